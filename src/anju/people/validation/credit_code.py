"""GB 32100-2015 unified social credit codes (统一社会信用代码) of organisations: 18 characters —
registration authority, organisation type, 6-digit region code, 9-character organisation code,
and a check character over a 31-character alphabet (no I, O, Z, S, V)."""

from __future__ import annotations

import re

from anju.people.validation.errors import InvalidCheckCharacter, InvalidDocumentNumber

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_SHAPE = re.compile(rf"^[1-9AY][1-9]\d{{6}}[{ALPHABET}]{{10}}$")


def check_character(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters."""
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def validate_credit_code(value: str) -> str:
    """The normalised code (upper case), or a typed error."""
    code = value.strip().upper()
    if not _SHAPE.match(code):
        raise InvalidDocumentNumber(
            "统一社会信用代码格式无效 / a unified social credit code is 18 characters: "
            "authority, type, 6-digit region, organisation code and check character"
        )
    if check_character(code[:17]) != code[17]:
        raise InvalidCheckCharacter(
            "统一社会信用代码校验码错误 / the check character of the unified social credit code "
            "is wrong"
        )
    return code
