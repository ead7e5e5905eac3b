"""Scrub personal information out of text and structured values before they are written anywhere.

Used by the log formatters (every log line passes through here) and by anything else that must
write free text it did not compose itself. Masked forms come from :mod:`anju.kit.masking` (the
display rules), so a log shows what a screen would. Two mechanisms:

- *by value*: patterns that look like PI in any string — 18-digit resident ID numbers,
  mainland mobile numbers, bank-card-like digit runs, e-mail addresses, and ``password=…``-style
  credentials in free text — are replaced by masked forms (``110105********002X``,
  ``138****5678``) or ``[REDACTED]``;
- *by key*: in mappings, values under keys that name PI or secrets (password, token, totp,
  id_number, phone, name, address, …) are replaced by ``[REDACTED]`` whatever they contain.

Redaction is deliberately greedy: a log line that loses a harmless 16-digit number is cheaper
than one that keeps a card number. It cannot recognise a person's name in free text; code must
put names in structured fields (which are redacted by key), never in messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from anju.kit.masking import mask_email, mask_id_number, mask_phone

REDACTED = "[REDACTED]"

# Word tokens that make a key sensitive on their own ("full_name", "phoneNumber", "x-api-token").
_SENSITIVE_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passcode",
        "passphrase",
        "secret",
        "token",
        "totp",
        "otp",
        "pin",
        "phone",
        "mobile",
        "tel",
        "telephone",
        "name",
        "username",
        "surname",
        "fullname",
        "address",
        "email",
        "mail",
        "authorization",
        "cookie",
        "credential",
        "credentials",
        "idnumber",
        "idno",
        "idcard",
        "ssn",
        "birthday",
        "birthdate",
        "dob",
        "face",
        "fingerprint",
        "biometric",
        "template",
        "plaintext",
    }
)
# Multi-word keys, compared after removing separators ("id_number" -> "idnumber").
_SENSITIVE_COMPOUNDS = frozenset(
    {
        "idnumber",
        "idno",
        "idcard",
        "apikey",
        "privatekey",
        "secretkey",
        "accesskey",
        "cardnumber",
        "cardno",
        "bankcard",
        "accountnumber",
        "sessionid",
        "setcookie",
    }
)

# Digit runs are bounded by non-digits for ID and mobile numbers ("tel13812345678" is caught)
# and by non-alphanumerics for card-like runs (so hex digests are not shredded).
_NOT_DIGIT_BEFORE, _NOT_DIGIT_AFTER = r"(?<![0-9])", r"(?![0-9])"
_NOT_ALNUM_BEFORE, _NOT_ALNUM_AFTER = r"(?<![0-9A-Za-z])", r"(?![0-9A-Za-z])"

# 18-digit resident identity number: 6-digit region, 8-digit birth date, 3-digit order, check.
_ID_NUMBER = re.compile(_NOT_DIGIT_BEFORE + r"\d{17}[0-9Xx]" + _NOT_DIGIT_AFTER)
# Mainland mobile: optional +86 / 0086 / 86, then 1[3-9] and 9 more digits, optional separators.
_MOBILE = re.compile(
    _NOT_DIGIT_BEFORE + r"(?:(?:\+|00)?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}" + _NOT_DIGIT_AFTER
)
# Bank-card-like: 13-19 digits, possibly grouped by single spaces or hyphens.
_CARD = re.compile(_NOT_ALNUM_BEFORE + r"\d(?:[ -]?\d){12,18}" + _NOT_ALNUM_AFTER)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Credentials written inline: password=…, "token": "…", Authorization: Bearer …
_INLINE_SECRET = re.compile(
    r"(?i)((?<![A-Za-z0-9])(?:password|passwd|pwd|passcode|secret|token|totp|otp|api[_-]?key|"
    r"authorization|cookie|id[_-]?number)(?![A-Za-z0-9])[\"']?\s*[:=]\s*)"
    r"(\"[^\"]*\"|'[^']*'|(?:bearer|basic)\s+\S+|[^\s,;&}]+)"
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_KEY_SPLIT = re.compile(r"[^A-Za-z0-9]+")


def mask_card(value: str) -> str:
    """Keep the first four and last four digits of a card-like number."""
    digits = re.sub(r"\D", "", value)
    return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]


def redact_text(text: str) -> str:
    """Mask PI-looking substrings and inline credentials in free text."""
    if not text:
        return text
    text = _INLINE_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _MOBILE.sub(lambda m: mask_phone(m.group(0)), text)
    text = _CARD.sub(lambda m: mask_card(m.group(0)), text)
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def is_sensitive_key(key: str) -> bool:
    """True when a field named ``key`` must never have its value written out."""
    spaced = _CAMEL_BOUNDARY.sub("_", key)
    words = [w.lower() for w in _KEY_SPLIT.split(spaced) if w]
    if any(w in _SENSITIVE_WORDS for w in words):
        return True
    # Compounds must be whole consecutive words: "id_number" yes, "paid_notes" no.
    return any(
        "".join(words[i:j]) in _SENSITIVE_COMPOUNDS or "".join(words[i:j]) in _SENSITIVE_WORDS
        for i in range(len(words))
        for j in range(i + 2, len(words) + 1)
    )


def redact_value(value: Any, key: str | None = None) -> Any:
    """A JSON-friendly copy of ``value`` with PI removed (by ``key`` name, then by content)."""
    if key is not None and is_sensitive_key(key) and value is not None:
        return REDACTED
    if value is None or isinstance(value, bool | int | float):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**10:
            return redact_text(str(value))  # long integers may be phone or card numbers
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    return redact_text(str(value))


def redact_mapping(fields: Mapping[Any, Any]) -> dict[str, Any]:
    """A copy of ``fields`` with sensitive keys blanked and every value scrubbed."""
    return {str(k): redact_value(v, str(k)) for k, v in fields.items()}
