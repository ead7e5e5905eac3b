"""Webhook event types, delivery states and the retry schedule."""

from __future__ import annotations

import secrets
from enum import StrEnum

from anju.errors import InvalidInput

#: Event types an endpoint may subscribe to (docs/webhooks.md lists their ``data``).
EVENT_TYPES = (
    "alarm.raised",
    "alarm.repeated",
    "alarm.acknowledged",
    "alarm.cleared",
    "unlock.recorded",
)
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
FIRST_RETRY_SECONDS = 10
MAX_RETRY_SECONDS = 3600
MAX_ENDPOINTS_PER_ORG = 20


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


def check_event_types(types: list[str]) -> list[str]:
    """The distinct subscribed types, each known (``invalid_input`` otherwise)."""
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if not types or unknown:
        raise InvalidInput(
            "未知或空的事件类型 / unknown or no event types",
            details={"unknown": unknown, "known": list(EVENT_TYPES)},
        )
    return sorted(set(types))


def new_secret() -> str:
    """A signing secret: 256 random bits, shown once."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def retry_delay_seconds(attempts: int) -> float:
    """Exponential back-off with jitter after ``attempts`` failed attempts: the n-th retry waits
    between half and all of 10 s · 2^(n-1), capped at an hour (jitter spreads a receiver's
    recovery load instead of retrying every queued event at the same instant)."""
    return retry_ceiling_seconds(attempts) * (0.5 + secrets.randbelow(1001) / 2000)


def retry_ceiling_seconds(attempts: int) -> float:
    """The longest wait after ``attempts`` failures (what a test advances its clock by)."""
    return float(min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1)))
