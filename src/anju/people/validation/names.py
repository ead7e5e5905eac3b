"""Names of people and organisations, phones, e-mail addresses and postal addresses.

Names may use any script, including rare CJK characters outside the BMP (Extension B and
later, e.g. 𠮷) and the middle dot of transliterated names (买买提·艾力). They are NFC
normalised; look-alike dots (•, ・, ･, ‧, ∙) become U+00B7. Control and format characters,
digits and the punctuation injection strings are made of are refused.
"""

from __future__ import annotations

import re
import unicodedata

from anju.people.validation.errors import FieldTooLong, InvalidContact, InvalidName

MAX_NAME = 64
MAX_ORGANISATION_NAME = 128
MAX_ADDRESS = 200
MAX_EMAIL = 254
MIDDLE_DOT = "\u00b7"
_DOT_VARIANTS = str.maketrans(dict.fromkeys("\u2022\u30fb\uff65\u2027\u2219\u22c5", MIDDLE_DOT))
#: Characters allowed between letters in personal names (Latin names: O'Neil, Jean-Luc, J. R.).
_NAME_JOINERS = frozenset({MIDDLE_DOT, " ", "-", "'", "\u2019", "."})
#: Newer CJK extensions (planes 2–3) may be unassigned in this Python's Unicode tables.
_CJK_PLANES = range(0x20000, 0x40000)
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_INTERNATIONAL = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^\s@<>;\"'\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")  # fmt: skip


def _is_letter(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category.startswith(("L", "M")) or (category == "Cn" and ord(ch) in _CJK_PLANES)


def _clean(
    value: str, limit: int, what: str, error: type[InvalidName | InvalidContact] = InvalidName
) -> str:
    text = unicodedata.normalize("NFC", value).translate(_DOT_VARIANTS).strip()
    if len(text) > limit:
        raise FieldTooLong(f"{what}过长 / {what} too long", details={"max_characters": limit})
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            raise error("含有控制字符 / contains control or format characters")
    return text


def validate_person_name(value: str) -> str:
    """A personal name: letters of any script joined by single dots, spaces, hyphens or
    apostrophes; 1–64 characters (code points)."""
    text = re.sub(r" {2,}", " ", _clean(value, MAX_NAME, "姓名"))
    if not text:
        raise InvalidName("姓名不能为空 / the name is empty")
    if not (_is_letter(text[0]) and _is_letter(text[-1])):
        raise InvalidName("姓名须以文字开头和结尾 / a name starts and ends with a letter")
    previous_joiner = False
    for ch in text:
        if _is_letter(ch):
            previous_joiner = False
        elif ch in _NAME_JOINERS and not previous_joiner:
            previous_joiner = ch != "."  # "J. R." puts a space after a dot
        else:
            raise InvalidName(
                "姓名含有不允许的字符 / the name contains a character names do not have"
            )
    return text


def validate_organisation_name(value: str) -> str:
    """An organisation's registered name: letters, digits, brackets and common punctuation."""
    text = _clean(value, MAX_ORGANISATION_NAME, "名称")
    if not text or not any(_is_letter(ch) for ch in text):
        raise InvalidName("机构名称无效 / the organisation name is empty or has no letters")
    if any(ch in '<>;"\\`{}$|' for ch in text):
        raise InvalidName(
            "机构名称含有不允许的字符 / the organisation name has a forbidden character"
        )
    return text


def validate_phone(value: str) -> str:
    """A mainland mobile number (11 digits) or an international one in E.164 (+ and digits)."""
    text = re.sub(r"[\s\-()]", "", unicodedata.normalize("NFKC", value))
    if len(text) > 20:
        raise FieldTooLong("电话号码过长 / phone number too long", details={"max_characters": 20})
    if text.startswith("+86"):
        text = text[3:]
    if _MOBILE.match(text) or _INTERNATIONAL.match(text):
        return text
    raise InvalidContact("电话号码格式无效 / not a valid phone number")


def validate_email(value: str) -> str:
    """An e-mail address (kept as typed, trimmed; compared case-insensitively)."""
    text = unicodedata.normalize("NFKC", value).strip()
    if len(text) > MAX_EMAIL:
        raise FieldTooLong("电子邮箱过长 / e-mail too long", details={"max_characters": MAX_EMAIL})
    if not _EMAIL.match(text):
        raise InvalidContact("电子邮箱格式无效 / not a valid e-mail address")
    return text


def validate_address(value: str) -> str:
    """A postal address: 1–200 characters, no control characters."""
    text = _clean(value, MAX_ADDRESS, "地址", InvalidContact)
    if not text:
        raise InvalidContact("地址不能为空 / the address is empty")
    if any(ch in '<>;"\\`{}$|' for ch in text):
        raise InvalidContact("地址含有不允许的字符 / the address has a forbidden character")
    return text
