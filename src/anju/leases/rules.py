"""Lease rules: states, limits, local dates (Asia/Shanghai), the rent schedule, typed errors."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum

from anju.errors import Conflict, InvalidInput, NotFound

#: China has kept UTC+8 without daylight saving since 1991: a fixed offset, no tz database.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
DEFAULT_GRACE_DAYS = 5
MAX_GRACE_DAYS = 60
MAX_TENANTS = 8
#: The access policy lets a tenant grant last 5 × 365 days; a lease is no longer.
MAX_DAYS = 5 * 365
MAX_MONTHLY_RENT_FEN = 100_000_000  # 1,000,000 yuan
CURRENCY = "CNY"


class LeaseStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ENDED = "ended"
    TERMINATED = "terminated"


class LeaseNotFound(NotFound):
    status, code = 404, "lease_not_found"


class LeaseStateConflict(Conflict):
    status, code = 409, "lease_state_conflict"


class LeaseOverlap(Conflict):
    status, code = 409, "lease_overlap"


class TenantNotFound(NotFound):
    status, code = 404, "tenant_not_found"


class RoomHasNoDoors(Conflict):
    status, code = 409, "room_has_no_doors"


class IdempotencyKeyReused(Conflict):
    status, code = 409, "idempotency_key_reused"


class Overpayment(Conflict):
    status, code = 409, "overpayment"


def local_date(moment: datetime) -> date:
    """The calendar date in Asia/Shanghai at ``moment`` (an aware time)."""
    return moment.astimezone(SHANGHAI).date()


def local_midnight(day: date) -> datetime:
    """00:00 Asia/Shanghai of ``day``, as an aware time."""
    return datetime.combine(day, time(0), SHANGHAI)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's end (31 Jan + 1 → 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Period:
    seq: int
    start: date
    end: date  # inclusive
    due: date
    amount_fen: int


def due_date(period_start: date, due_day: int) -> date:
    """The first day on or after ``period_start`` whose day of month is ``due_day``."""
    candidate = period_start.replace(day=due_day)
    return candidate if candidate >= period_start else add_months(candidate, 1)


def schedule(start: date, end: date, monthly_fen: int, due_day: int) -> list[Period]:
    """Monthly periods from ``start`` to ``end`` (inclusive); a shorter last period is charged
    by its share of days of a full month, rounded down to the fen."""
    periods = []
    k = 0
    while True:
        p_start = add_months(start, k)
        if p_start > end:
            break
        full_end = add_months(start, k + 1) - timedelta(days=1)
        p_end = min(full_end, end)
        amount = monthly_fen
        if p_end < full_end:
            days, full = (p_end - p_start).days + 1, (full_end - p_start).days + 1
            amount = monthly_fen * days // full
        periods.append(Period(k + 1, p_start, p_end, due_date(p_start, due_day), amount))
        k += 1
    return periods


def check_terms(start: date, end: date, monthly_fen: int, due_day: int, grace_days: int) -> None:
    """Dates in order and ≤ 5 × 365 days, rent 1 fen … 1,000,000 yuan, due day 1–28, grace 0–60."""
    if end < start:
        raise InvalidInput(
            "结束日期不能早于开始日期 / the end date is before the start date",
            details={"field": "end_date"},
        )
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput(
            f"租期最长 {MAX_DAYS} 天 / a lease lasts at most {MAX_DAYS} days",
            details={"field": "end_date"},
        )
    if not 0 < monthly_fen <= MAX_MONTHLY_RENT_FEN:
        raise InvalidInput(
            f"月租（分）: 1–{MAX_MONTHLY_RENT_FEN}", details={"field": "monthly_rent_fen"}
        )
    if not 1 <= due_day <= 28:
        raise InvalidInput("缴费日 / due_day: 1–28", details={"field": "due_day"})
    check_grace(grace_days)


def check_grace(grace_days: int) -> int:
    if not 0 <= grace_days <= MAX_GRACE_DAYS:
        raise InvalidInput(
            f"宽限期 / grace_days: 0–{MAX_GRACE_DAYS}", details={"field": "grace_days"}
        )
    return grace_days
