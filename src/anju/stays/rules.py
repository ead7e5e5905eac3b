"""States, channels, limits, errors and time handling of bookings and stays (docs/stays.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from anju.errors import Conflict, InvalidInput, NotFound, Unauthenticated

#: Where reports and lock schedules are read (clients may send any UTC offset; we store UTC).
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
#: A booking's longest period (a guest grant lasts at most 90 days, anju.access.rules).
LONGEST_STAY = timedelta(days=90)
MAX_HEADCOUNT = 50
MAX_REF = 200
#: A visitor's pass lasts at most this long.
LONGEST_VISIT = timedelta(hours=24)


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


#: Bookings that hold their room: the others (cancelled, no-show, checked out — early or on
#: time) never block a new booking.
HOLDING = (BookingStatus.BOOKED, BookingStatus.CHECKED_IN)


class Channel(StrEnum):
    DIRECT = "direct"
    OTA = "ota"
    PMS = "pms"
    ICAL = "ical"


#: Channels that sign webhooks with a per-channel secret.
WEBHOOK_CHANNELS = (Channel.OTA, Channel.PMS)


class BookingNotFound(NotFound):
    code = "booking_not_found"


class BookingOverlap(Conflict):
    code = "booking_overlap"


class BookingState(Conflict):
    """The booking is not in a state that allows this (details: ``status``)."""

    code = "booking_state"


class AlreadyCheckedIn(Conflict):
    code = "already_checked_in"


class NotCheckedIn(Conflict):
    code = "not_checked_in"


class HeadcountMismatch(Conflict):
    code = "headcount_mismatch"


class IdentityNotVerified(Conflict):
    code = "identity_not_verified"


class WebhookSignatureInvalid(Unauthenticated):
    code = "booking_webhook_signature_invalid"


class WebhookReplayed(Conflict):
    code = "booking_webhook_replayed"


class FeedError(Conflict):
    """An iCal feed could not be fetched or read (details: ``reason``)."""

    code = "ical_feed_error"


def booking_not_found() -> BookingNotFound:
    return BookingNotFound("预订不存在 / no such booking")


def parse_channel(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise InvalidInput(
            f"未知渠道 / unknown channel {value[:20]!r}",
            details={"field": "channel", "known": [c.value for c in Channel]},
        ) from None


def as_utc(value: datetime, field: str) -> datetime:
    """An aware datetime in UTC; a naive one is refused (we never guess a client's zone)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            "时间须带时区偏移 / a time needs a UTC offset (e.g. +08:00 or Z)",
            details={"field": field},
        )
    return value.astimezone(UTC)


def local(value: datetime) -> str:
    """ISO text of ``value`` in Asia/Shanghai (what reports and front desks read)."""
    return value.astimezone(LOCAL_ZONE).isoformat()


def check_period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The period in UTC if it is a sane stay: start before end, at most 90 days."""
    start, end = as_utc(start, "starts_at"), as_utc(end, "ends_at")
    if end <= start:
        raise InvalidInput(
            "离店须晚于入住 / the end must be after the start", details={"field": "ends_at"}
        )
    if end - start > LONGEST_STAY:
        raise InvalidInput(
            f"预订最长 {LONGEST_STAY.days} 天 / a booking lasts at most {LONGEST_STAY.days} days",
            details={"field": "ends_at"},
        )
    return start, end


def check_headcount(value: int) -> int:
    if not 1 <= value <= MAX_HEADCOUNT:
        raise InvalidInput(f"headcount: 1–{MAX_HEADCOUNT}", details={"field": "headcount"})
    return value


def check_ref(value: str | None, field: str = "external_ref") -> str | None:
    if value is not None and not 0 < len(value) <= MAX_REF:
        raise InvalidInput(f"{field}: 1–{MAX_REF} characters", details={"field": field})
    return value


def check_room_id(value: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 36:
        raise InvalidInput("房间标识无效 / bad room id", details={"field": "room_id"})
    return value
