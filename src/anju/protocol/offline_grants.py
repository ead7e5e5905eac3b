"""Offline passcode grants: what a code allows and when a lock admits it (R2, L15).

The time rules are shared by the platform (which shows and issues grants) and the lock (which
checks them); docs/offline-passcodes.md. All times are whole UTC hours counted from
:data:`BASE`; the API takes aware datetimes in any zone and keeps them in UTC, so the lock needs
no time zone. :mod:`anju.protocol.offline_passcode` turns a grant into digits and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from anju.errors import InvalidInput
from anju.protocol.access import Schedule

#: Hour 0 of the format: every start is a whole UTC hour counted from here.
BASE = datetime(2025, 1, 1, tzinfo=UTC)  # a Wednesday
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
HOUR_LIMIT = 1 << 18  # start hours 0 … 2^18 - 1: until 2054-11-26
DAY_LIMIT = HOUR_LIMIT // 24
SLOTS = 4  # codes of one lock and epoch that may share a start hour
SERIAL_LIMIT = HOUR_LIMIT * SLOTS
MAX_EPOCH = (1 << 32) - 1
MAX_ADVANCE = 8  # a clear code moves the epoch ahead by 1 … 8
MAX_WEEKS = 53  # recurring codes run 1 … 53 whole weeks
DEFAULT_TOLERANCE = timedelta(minutes=15)
MAX_TOLERANCE = timedelta(minutes=30)  # the bounds in the docs assume at most half an hour


class OfflineKind(StrEnum):
    """What an offline code says."""

    ONE_TIME = "one_time"  # opens once inside its window
    PERIOD = "period"  # opens from valid_from until valid_until
    PERMANENT = "permanent"  # opens from valid_from until revoked
    RECURRING = "recurring"  # opens in a daily window on some weekdays, for whole weeks
    CLEAR = "clear"  # opens nothing: advances the lock's epoch or revokes one serial


#: The longest window of each kind that has one (hours): a week, and three years and a day.
MAX_HOURS = {OfflineKind.ONE_TIME: 168, OfflineKind.PERIOD: 26304}


def _bad(message: str) -> InvalidInput:
    return InvalidInput(f"离线密码参数无效 / invalid offline passcode parameters: {message}")


def _int_in(value: object, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(f"{what} must be an integer in [{lo}, {hi}]")
    return value


def _utc_hour(value: object, what: str) -> datetime:
    """An aware datetime on a whole hour, as UTC (naive datetimes are time-zone bugs)."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise _bad(f"{what} must be an aware datetime (naive times are refused)")
    utc = value.astimezone(UTC)
    if (utc.minute, utc.second, utc.microsecond) != (0, 0, 0):
        raise _bad(f"{what} must be on a whole UTC hour")
    return utc


def hour_index(value: datetime) -> int:
    """Whole hours from BASE to ``value``."""
    return (value - BASE) // HOUR


def seconds_since_base(at: datetime) -> int:
    """Whole seconds from :data:`BASE` to the aware instant ``at`` (negative before it)."""
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise _bad("the time must be an aware datetime")
    return (at - BASE) // timedelta(seconds=1)


def _weekday(day: int) -> int:
    """Weekday (Monday = 0) of day ``day`` after BASE (a Wednesday)."""
    return (day + 2) % 7


@dataclass(frozen=True)
class Recurrence:
    """A daily window in UTC: it starts at ``start_hour`` on each UTC day whose weekday is in
    ``weekdays`` (bit 0 = Monday … bit 6 = Sunday) and lasts ``hours`` (1–24)."""

    weekdays: int
    start_hour: int
    hours: int

    def __post_init__(self) -> None:
        _int_in(self.weekdays, "weekdays", 1, 127)
        _int_in(self.start_hour, "start_hour", 0, 23)
        _int_in(self.hours, "hours", 1, 24)

    @classmethod
    def from_schedule(cls, schedule: Schedule) -> tuple[Recurrence, int]:
        """The UTC form of a local :class:`~anju.protocol.access.Schedule` (whole hours and a
        whole-hour offset), and the day shift from a local date to the UTC day its window
        starts on (-1, 0 or +1)."""
        minutes = (schedule.start_minute, schedule.end_minute, schedule.utc_offset_minutes)
        if any(m % 60 for m in minutes):
            raise _bad("offline codes are hour-granular: whole-hour times and UTC offset")
        utc_start = schedule.start_minute - schedule.utc_offset_minutes
        shift = utc_start // 1440
        length = (schedule.end_minute - schedule.start_minute) % 1440 or 1440
        weekdays = sum(1 << ((w + shift) % 7) for w in range(7) if schedule.weekdays >> w & 1)
        return cls(weekdays, (utc_start % 1440) // 60, length // 60), shift


@dataclass(frozen=True)
class OfflineGrant:
    """What one offline code grants. Times are aware datetimes on whole hours, kept in UTC.

    ``slot`` (0–3) is chosen by the issuer so that no two live codes of a lock and epoch share
    a start hour and slot; :attr:`serial` (start hour × 4 + slot) then names the code for
    revocation. RECURRING: ``valid_from`` is 00:00 UTC of the first day a window may start,
    ``valid_until`` whole weeks later (a window that starts before it runs to its end).
    """

    kind: OfflineKind
    valid_from: datetime
    valid_until: datetime | None
    slot: int = 0
    epoch: int = 0
    recurrence: Recurrence | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, OfflineKind) or self.kind is OfflineKind.CLEAR:
            raise _bad("kind must be one_time, period, permanent or recurring")
        _int_in(self.slot, "slot", 0, SLOTS - 1)
        _int_in(self.epoch, "epoch", 0, MAX_EPOCH)
        start = _utc_hour(self.valid_from, "valid_from")
        if not 0 <= hour_index(start) < HOUR_LIMIT:
            raise _bad(f"valid_from must lie in [{BASE:%Y-%m-%d}, {BASE + HOUR_LIMIT * HOUR})")
        object.__setattr__(self, "valid_from", start)
        if (self.valid_until is None) != (self.kind is OfflineKind.PERMANENT):
            raise _bad("valid_until is None exactly for permanent codes")
        if (self.recurrence is None) != (self.kind is not OfflineKind.RECURRING):
            raise _bad("a recurrence is given exactly for recurring codes")
        if self.valid_until is not None:
            end = _utc_hour(self.valid_until, "valid_until")
            if end <= start:
                raise _bad("valid_until must be after valid_from")
            object.__setattr__(self, "valid_until", end)
        if self.kind is OfflineKind.RECURRING:
            span = self.valid_until - start if self.valid_until else timedelta(0)
            if start.hour != 0 or span % timedelta(weeks=1) or span > MAX_WEEKS * timedelta(7):
                raise _bad(f"a recurring code runs whole weeks (1–{MAX_WEEKS}) from 00:00 UTC")
            if hour_index(start) // 24 >= DAY_LIMIT:
                raise _bad(f"a recurring code starts before {BASE + DAY_LIMIT * DAY:%Y-%m-%d}")
        longest = MAX_HOURS.get(self.kind)
        if longest is not None and (self.hours or 0) > longest:
            raise _bad(f"{self.kind.value} codes last at most {longest} hours")

    @classmethod
    def recurring_local(
        cls,
        *,
        first_day: date,
        weeks: int,
        schedule: Schedule,
        slot: int = 0,
        epoch: int = 0,
    ) -> OfflineGrant:
        """A recurring grant from a local schedule: windows start on local days ``first_day``
        … ``first_day + 7·weeks - 1`` (the lock itself needs no time zone)."""
        recurrence, shift = Recurrence.from_schedule(schedule)
        _int_in(weeks, "weeks", 1, MAX_WEEKS)
        start = datetime.combine(first_day + shift * DAY, datetime.min.time(), UTC)
        return cls(
            OfflineKind.RECURRING,
            start,
            start + timedelta(weeks=weeks),
            slot=slot,
            epoch=epoch,
            recurrence=recurrence,
        )

    @property
    def first_hour(self) -> int:
        """Hours from BASE to the first moment the code can open."""
        first = hour_index(self.valid_from)
        return first + self.recurrence.start_hour if self.recurrence else first

    @property
    def serial(self) -> int:
        """The revocation serial: start hour × 4 + slot (unique among a lock's live codes)."""
        return self.first_hour * SLOTS + self.slot

    @property
    def credential_id(self) -> str:
        """The id unlock records use for this code: ``offline-<epoch>-<serial>``."""
        return f"offline-{self.epoch}-{self.serial}"

    @property
    def hours(self) -> int | None:
        """Length of the validity in hours (None for permanent codes)."""
        return None if self.valid_until is None else (self.valid_until - self.valid_from) // HOUR

    def admits(self, at: datetime, tolerance: timedelta = DEFAULT_TOLERANCE) -> str | None:
        """None when the time rules admit instant ``at`` (edges widened by ``tolerance`` for
        the lock's clock drift), else ``not_yet_valid``, ``expired`` or ``outside_schedule``."""
        t, tol = seconds_since_base(at), _tolerance_seconds(tolerance)
        first = self.first_hour * 3600
        if t < first - tol:
            return "not_yet_valid"
        if self.recurrence is None:
            if self.valid_until is not None and t >= seconds_since_base(self.valid_until) + tol:
                return "expired"
            return None
        rec, first_day = self.recurrence, hour_index(self.valid_from) // 24
        last_day = first_day + (self.hours or 0) // 24 - 1
        if t >= ((last_day * 24 + rec.start_hour + rec.hours) * 3600) + tol:
            return "expired"
        day = (t - rec.start_hour * 3600) // 86400
        for d in (day - 1, day, day + 1):
            start = (d * 24 + rec.start_hour) * 3600
            if (
                first_day <= d <= last_day
                and rec.weekdays >> _weekday(d) & 1
                and start - tol <= t < start + rec.hours * 3600 + tol
            ):
                return None
        return "outside_schedule"


@dataclass(frozen=True)
class OfflineClear:
    """A clear code's instruction, issued at ``epoch``: move the lock to ``new_epoch`` (every
    older code dies) or revoke one ``revoke_serial`` of ``epoch``. Exactly one is given."""

    epoch: int
    new_epoch: int | None = None
    revoke_serial: int | None = None

    def __post_init__(self) -> None:
        _int_in(self.epoch, "epoch", 0, MAX_EPOCH)
        if (self.new_epoch is None) == (self.revoke_serial is None):
            raise _bad("a clear code either advances the epoch or revokes one serial")
        if self.new_epoch is not None:
            _int_in(self.new_epoch, "new_epoch", self.epoch + 1, self.epoch + MAX_ADVANCE)
            _int_in(self.new_epoch, "new_epoch", 1, MAX_EPOCH)
        if self.revoke_serial is not None:
            _int_in(self.revoke_serial, "revoke_serial", 0, SERIAL_LIMIT - 1)

    @property
    def kind(self) -> OfflineKind:
        return OfflineKind.CLEAR


def _tolerance_seconds(tolerance: timedelta) -> int:
    if not isinstance(tolerance, timedelta) or not timedelta(0) <= tolerance <= MAX_TOLERANCE:
        raise _bad(f"the clock tolerance must lie in [0, {MAX_TOLERANCE}]")
    return tolerance // timedelta(seconds=1)
