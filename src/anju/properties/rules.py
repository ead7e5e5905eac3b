"""What a property may hold: kinds, limits, the shape of region codes and names, and the typed
errors (stable codes, docs/properties.md)."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from anju.errors import Conflict, InvalidInput, NotFound

#: Locks on the doors of one room (a suite may have an inner door; a room rarely has more).
MAX_LOCKS_PER_ROOM = 4
#: Devices in one door group (entrances, gates, lifts of one scope).
MAX_DOORS_PER_GROUP = 32
MAX_NAME = 100
MAX_FLOORS = 300
MAX_CAPACITY = 100
#: Floors below ground are negative (B2 = -2); no building is deeper than this.
MIN_FLOOR = -10


class SiteKind(StrEnum):
    HOTEL = "hotel"
    HOMESTAY = "homestay"
    APARTMENT = "apartment"
    PUBLIC_RENTAL = "public_rental"
    ESTATE = "estate"


class RoomKind(StrEnum):
    STANDARD = "standard"
    SUITE = "suite"
    DORMITORY = "dormitory"
    APARTMENT = "apartment"
    OTHER = "other"


class Scope(StrEnum):
    """Where a door group hangs: a site, a building or a unit."""

    SITE = "site"
    BUILDING = "building"
    UNIT = "unit"


#: First two digits of GB/T 2260 codes: provinces, autonomous regions, municipalities, SARs.
PROVINCE_PREFIXES = frozenset(
    {
        *(f"{n}" for n in (11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37)),
        *(f"{n}" for n in (41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65)),
        "71",
        "81",
        "82",
    }
)
_REGION = re.compile(r"[0-9]{6}")
_REGION_PREFIX = re.compile(r"[0-9]{2,6}")
#: Characters no name or address part needs and injection payloads love.
_FORBIDDEN = frozenset("<>\"'`;\\{}$")


class InvalidRegionCode(InvalidInput):
    status, code = 422, "invalid_region_code"


class InvalidName(InvalidInput):
    status, code = 422, "invalid_name"


class NameTaken(Conflict):
    status, code = 409, "name_taken"


class RoomNumberTaken(Conflict):
    status, code = 409, "room_number_taken"


class NotEmpty(Conflict):
    status, code = 409, "property_not_empty"


class LockAlreadyBound(Conflict):
    status, code = 409, "lock_already_bound"


class RoomLockLimit(Conflict):
    status, code = 409, "room_lock_limit"


class SiteNotFound(NotFound):
    status, code = 404, "site_not_found"


class BuildingNotFound(NotFound):
    status, code = 404, "building_not_found"


class UnitNotFound(NotFound):
    status, code = 404, "unit_not_found"


class RoomNotFound(NotFound):
    status, code = 404, "room_not_found"


class DoorGroupNotFound(NotFound):
    status, code = 404, "door_group_not_found"


class LockNotFound(NotFound):
    status, code = 404, "lock_not_found"


def check_region_code(value: str) -> str:
    """A 6-digit GB/T 2260 code of a county-level division (shape and province checked)."""
    if not _REGION.fullmatch(value) or value[:2] not in PROVINCE_PREFIXES:
        raise InvalidRegionCode(
            "行政区划代码应为 6 位 GB/T 2260 代码 / region_code: a 6-digit GB/T 2260 code",
            details={"field": "region_code"},
        )
    if value.endswith("0000"):
        raise InvalidRegionCode(
            "行政区划代码应到区县一级 / region_code: give the county-level code, not a province",
            details={"field": "region_code"},
        )
    return value


def check_region_prefix(value: str) -> str:
    """A jurisdiction: the first 2–6 digits of region codes (province, city or county)."""
    if not _REGION_PREFIX.fullmatch(value) or value[:2] not in PROVINCE_PREFIXES:
        raise InvalidRegionCode(
            "辖区应为 2–6 位行政区划代码前缀 / jurisdiction: 2–6 digits of a region code",
            details={"field": "region_prefix"},
        )
    return value


def check_name(value: str, field: str, *, required: bool = True, limit: int = MAX_NAME) -> str:
    """A trimmed, NFC-normalised name: printable, no markup or quoting characters, ≤ limit."""
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        if required:
            raise InvalidName(f"{field} 不能为空 / {field} is required", details={"field": field})
        return ""
    if len(text) > limit:
        raise InvalidName(
            f"{field} 最长 {limit} 字 / {field}: at most {limit} characters",
            details={"field": field, "max": limit},
        )
    if any(c in _FORBIDDEN or not c.isprintable() for c in text):
        raise InvalidName(
            f"{field} 含不允许的字符 / {field} holds characters that are not allowed",
            details={"field": field},
        )
    return text


def check_range(value: int | None, field: str, low: int, high: int) -> int | None:
    if value is not None and not low <= value <= high:
        raise InvalidInput(f"{field}: {low}–{high}", details={"field": field})
    return value
