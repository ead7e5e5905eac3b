"""De-identified display of PI (L11): masked by default, never raising on odd input.

Rules (one function each; ``mask(rule, value)`` dispatches by the inventory's rule name):

- ``id_number``: keep the first 6 (region) and last 4 characters — ``110105********002X``.
- ``phone``: keep the first 3 and last 4 digits — ``138****5678`` (``+86`` dropped).
- ``name``: Chinese names keep the first character (``张三`` → ``张*``, ``欧阳娜娜`` → ``欧***``);
  names joined with a middle dot keep the dots (``买买提·艾力`` → ``买**·**``); Latin-script names
  become first letter + ``***`` (the length is not shown).
- ``address``: keep province / city / district, replace the rest by ``****``.
- ``email``: first character of the local part + ``***`` + ``@domain``.
- ``generic``: keep first and last character of values of 4+ characters.
- ``hidden``: always ``******`` (templates, credentials: nothing is ever shown).

Python strings index by code point, so supplementary-plane characters such as ``𠮷`` count as
one character and are never split.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

MaskRule = Literal["id_number", "phone", "name", "address", "email", "generic", "hidden"]
MASK_RULES: tuple[MaskRule, ...] = (
    "id_number",
    "phone",
    "name",
    "address",
    "email",
    "generic",
    "hidden",
)
STAR = "*"
HIDDEN = "******"
_NAME_SEPARATORS = "·•・．.‧ "
_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003134f]"
_ADDRESS_PREFIX = re.compile(
    rf"^(?P<province>{_HAN}{{1,10}}?(?:省|自治区|特别行政区))?"
    rf"(?P<city>{_HAN}{{1,10}}?(?:市|自治州|地区|盟))?"
    rf"(?P<district>{_HAN}{{1,10}}?(?:区|县|市|旗))?"
)


def mask_generic(value: str) -> str:
    """Keep the first and last character of 4+ characters, the first of 2–3, none of 1."""
    text = value.strip()
    n = len(text)
    if n == 0:
        return ""
    if n == 1:
        return STAR
    if n <= 3:
        return text[0] + STAR * (n - 1)
    return text[0] + STAR * (n - 2) + text[-1]


def mask_id_number(value: str) -> str:
    """``110105********002X``: first 6 and last 4 kept."""
    text = re.sub(r"\s", "", unicodedata.normalize("NFKC", value)).upper()
    if len(text) <= 10:
        return mask_generic(text)
    return text[:6] + STAR * (len(text) - 10) + text[-4:]


def mask_phone(value: str) -> str:
    """``138****5678``: first 3 and last 4 digits kept."""
    digits = "".join(
        ch for ch in unicodedata.normalize("NFKC", value) if ch.isascii() and ch.isdigit()
    )
    if len(digits) == 13 and digits.startswith("861"):
        digits = digits[2:]
    elif len(digits) == 15 and digits.startswith("00861"):
        digits = digits[4:]
    if len(digits) < 7:
        return mask_generic(digits)
    return digits[:3] + STAR * (len(digits) - 7) + digits[-4:]


def _is_latin_letter(ch: str) -> bool:
    return ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN")


def mask_name(value: str) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧***, 买买提·艾力 → 买**·**, John Smith → J***."""
    text = unicodedata.normalize("NFC", value.strip())
    if not text:
        return ""
    if _is_latin_letter(text[0]):
        return text[0] + STAR * 3
    if len(text) == 1:
        return STAR
    out = [text[0]]
    out.extend(ch if ch in _NAME_SEPARATORS else STAR for ch in text[1:])
    return "".join(out)


def mask_address(value: str) -> str:
    """Keep province / city / district; the street, building and room become ``****``."""
    text = value.strip()
    if not text:
        return ""
    match = _ADDRESS_PREFIX.match(text)
    kept = match.group(0) if match else ""
    if not kept:
        return mask_generic(text)
    return kept + ("****" if len(kept) < len(text) else "")


def mask_email(value: str) -> str:
    """``z***@example.com``."""
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local:
        return mask_generic(text)
    return local[0] + STAR * 3 + "@" + domain


def mask_hidden(value: str) -> str:
    """Nothing shown, not even the length."""
    return HIDDEN if value else ""


_RULES = {
    "id_number": mask_id_number,
    "phone": mask_phone,
    "name": mask_name,
    "address": mask_address,
    "email": mask_email,
    "generic": mask_generic,
    "hidden": mask_hidden,
}


def mask(rule: str, value: str | None) -> str:
    """Mask ``value`` by the named rule; unknown rules and odd input fall back safely."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    masker = _RULES.get(rule, mask_hidden)
    try:
        return masker(text)
    except Exception:  # a display helper must never break a page; show nothing instead
        return HIDDEN
