"""Report kinds, delivery states, the retry schedule, and which answers park a report."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from anju.errors import InvalidInput

#: China Standard Time: no daylight saving since 1991, so a fixed +08:00 is exact.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
FIRST_RETRY_SECONDS = 5
#: While the regulator is down, the sender probes it with one report at a time: the first
#: probe a second after the failure, then doubling, at most every 30 s — so the catch-up starts
#: within 30 s of the regulator coming back, and an hour's outage costs about 125 attempts,
#: not one per queued report per back-off.
FIRST_PROBE_SECONDS = 1
PROBE_CAP_SECONDS = 30
#: Unlock records per unlock report (a bounded body; a busy window makes several reports).
UNLOCKS_PER_REPORT = 500


class ReportKind(StrEnum):
    CHECK_IN = "check_in"
    CHECK_OUT = "check_out"
    UNLOCKS = "unlocks"


class ReportStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    PARKED = "parked"  # the regulator refused it as malformed: kept, alarmed, not retried


def check_aware(at: datetime, name: str) -> datetime:
    """``at`` if it carries a UTC offset; a naive time is ambiguous (``invalid_input``)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput(
            f"{name} 须带时区 / {name} must carry a UTC offset", details={"field": name}
        )
    return at


def shanghai_time(at: datetime) -> str:
    """ISO 8601 in Asia/Shanghai with its offset (``2026-11-24T19:30:00+08:00``)."""
    return at.astimezone(SHANGHAI).isoformat()


def retry_delay_seconds(attempts: int, cap_seconds: float) -> float:
    """Exponential back-off with jitter after ``attempts`` failures: between half and all of
    5 s · 2^(n-1), capped (jitter spreads the catch-up load when the regulator comes back)."""
    return retry_ceiling_seconds(attempts, cap_seconds) * (0.5 + secrets.randbelow(1001) / 2000)


def retry_ceiling_seconds(attempts: int, cap_seconds: float) -> float:
    """The longest wait after ``attempts`` failures (what a test advances its clock by)."""
    return float(min(cap_seconds, FIRST_RETRY_SECONDS * 2 ** max(0, min(attempts, 30) - 1)))


def probe_delay_seconds(failed_probes: int) -> float:
    """How long the sender waits before probing again after ``failed_probes`` in a row."""
    doubled = FIRST_PROBE_SECONDS * 2 ** max(0, min(failed_probes, 30) - 1)
    return float(min(PROBE_CAP_SECONDS, doubled))


def unavailable(status_code: int | None) -> bool:
    """Whether an answer means the regulator as a whole is down or failing (no answer, 5xx),
    not that one report was refused."""
    return status_code is None or status_code >= 500


def parks(status_code: int | None) -> bool:
    """Whether an answer means *this report* is refused (4xx other than 408/409/425/429):
    retrying the same bytes cannot help. Transport errors and 5xx are retried without limit."""
    if status_code is None:
        return False
    return 400 <= status_code < 500 and status_code not in (408, 409, 425, 429)
