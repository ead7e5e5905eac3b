"""GB 11643-1999 citizen identity numbers (居民身份证号码): 18 characters — 6-digit region code,
8-digit birth date, 3-digit sequence, ISO 7064 MOD 11-2 check character (0-9 or X).

The region check is the province level (the first two digits, GB/T 2260): county codes change
every year and a stale list would refuse real people; the province list does not change.
"""

from __future__ import annotations

import re
from datetime import date

from anju.people.validation.errors import (
    ImplausibleBirthDate,
    InvalidCheckCharacter,
    InvalidDocumentNumber,
    UnknownRegion,
)

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"
EARLIEST_BIRTH = date(1900, 1, 1)
#: GB/T 2260 province-level codes (incl. 71 Taiwan, 81 Hong Kong, 82 Macao — residence permits).
PROVINCE_CODES = frozenset(
    {
        "11", "12", "13", "14", "15",
        "21", "22", "23",
        "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46",
        "50", "51", "52", "53", "54",
        "61", "62", "63", "64", "65",
        "71", "81", "82", "83",
    }
)  # fmt: skip
_SHAPE = re.compile(r"^\d{17}[\dX]$")


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARACTERS[total % 11]


def birth_date_of(number: str) -> date:
    """The birth date encoded in characters 7–14 (ValueError if it is no calendar date)."""
    return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def validate_resident_id(value: str, today: date) -> str:
    """The normalised number (upper-case X), or a typed error saying what is wrong."""
    number = value.strip().upper()
    if not _SHAPE.match(number):
        raise InvalidDocumentNumber(
            "居民身份证号码须为 17 位数字加 1 位校验码 / a resident ID number is 17 digits and a "
            "check character (0-9 or X)"
        )
    if number[:2] not in PROVINCE_CODES:
        raise UnknownRegion(
            "居民身份证号码的地区码无效 / the region code of the resident ID number is not a "
            "province of GB/T 2260"
        )
    try:
        born = birth_date_of(number)
    except ValueError:
        raise ImplausibleBirthDate(
            "居民身份证号码中的出生日期不存在 / the birth date in the resident ID number is not "
            "a calendar date"
        ) from None
    if not EARLIEST_BIRTH <= born <= today:
        raise ImplausibleBirthDate(
            "居民身份证号码中的出生日期不合理 / the birth date in the resident ID number is "
            "before 1900 or in the future"
        )
    if check_character(number[:17]) != number[17]:
        raise InvalidCheckCharacter(
            "居民身份证号码校验码错误 / the check character of the resident ID number is wrong"
        )
    return number
