"""Blind index: find a record by an exact PI value without decrypting anything.

``index = HMAC-SM3(K_field, normalise(value))`` where ``K_field`` is derived from the keyring's
``secret("blind-index")`` — its own key, never a master or data key — with HKDF-SM3 and
``info = b"anju/blind-index/v1" 0x00 utf8(field)``. One key per field means the same value in two
fields (a phone number also typed as a name) gives unrelated indexes, so indexes cannot be joined
across fields.

Normalisation makes equal values in different spellings index equally:

- ``text``: Unicode NFKC (full-width → half-width), trim, collapse inner whitespace, casefold.
- ``id_number``: NFKC, drop spaces and hyphens, uppercase (a final ``x`` becomes ``X``).
- ``phone``: NFKC, digits only, a ``+86`` / ``0086`` / ``86`` country prefix before an 11-digit
  mobile number removed.
- ``email``: NFKC, trim, casefold.

Length: the full 32-byte HMAC is the default. A truncated form (``length`` 8..31 bytes) is
available for fields where deliberate collisions are wanted (fewer bits stored = less linkage
if the index column leaks; the caller then filters candidates after decryption). The protection
against guessing comes from the secret key, not from truncation: without the key an attacker
cannot test candidate values at all.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from anju.kit.crypto import HmacSm3, hkdf_sm3

Normaliser = Literal["text", "id_number", "phone", "email"]
INFO_PREFIX = b"anju/blind-index/v1\x00"
FULL_LENGTH = 32
MIN_LENGTH = 8
_SPACES = re.compile(r"\s+")
_MOBILE_WITH_CC = re.compile(r"^(?:0086|86)(1\d{10})$")


def normalise_text(value: str) -> str:
    """NFKC, trim, collapse whitespace, casefold."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", value).strip()).casefold()


def normalise_id_number(value: str) -> str:
    """NFKC, no spaces or hyphens, uppercase (check digit ``X``)."""
    text = unicodedata.normalize("NFKC", value)
    return re.sub(r"[\s\-]", "", text).upper()


def normalise_phone(value: str) -> str:
    """Digits only, Chinese country code removed from a mobile number."""
    digits = "".join(
        ch for ch in unicodedata.normalize("NFKC", value) if ch.isascii() and ch.isdigit()
    )
    match = _MOBILE_WITH_CC.match(digits)
    return match.group(1) if match else digits


def normalise_email(value: str) -> str:
    """NFKC, trim, casefold."""
    return unicodedata.normalize("NFKC", value).strip().casefold()


NORMALISERS = {
    "text": normalise_text,
    "id_number": normalise_id_number,
    "phone": normalise_phone,
    "email": normalise_email,
}


def normalise(value: str, kind: Normaliser) -> str:
    """Apply the named normaliser."""
    return NORMALISERS[kind](value)


class BlindIndex:
    """Computes blind indexes; per-field HMAC keys are derived once and kept precomputed."""

    def __init__(self, secret: bytes, *, length: int = FULL_LENGTH) -> None:
        if len(secret) < 16:
            raise ValueError("blind-index secret must be at least 16 bytes")
        if not MIN_LENGTH <= length <= FULL_LENGTH:
            raise ValueError(f"length must be between {MIN_LENGTH} and {FULL_LENGTH} bytes")
        self._secret = secret
        self._length = length
        self._macs: dict[str, HmacSm3] = {}

    @property
    def length(self) -> int:
        return self._length

    def _mac(self, field: str) -> HmacSm3:
        mac = self._macs.get(field)
        if mac is None:
            if not field:
                raise ValueError("blind index needs a field name")
            key = hkdf_sm3(self._secret, length=32, info=INFO_PREFIX + field.encode("utf-8"))
            mac = self._macs[field] = HmacSm3(key)
        return mac

    def compute(self, field: str, value: str, kind: Normaliser = "text") -> bytes:
        """The blind index of ``value`` in ``field``; ValueError when nothing is left to index."""
        normalised = normalise(value, kind)
        if not normalised:
            raise ValueError("value is empty after normalisation; nothing to index")
        return self._mac(field).digest(normalised.encode("utf-8"))[: self._length]
