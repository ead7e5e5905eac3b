"""Request kinds and the status machine; staff activity purposes; text limits."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from enum import StrEnum

from anju.errors import Conflict, InvalidInput, PayloadTooLarge

MAX_BODY_CHARS = 2000
MAX_ACTIVITY = timedelta(days=2)
MAX_DOORS = 20


class RequestKind(StrEnum):
    REPAIR = "repair"
    FEEDBACK = "feedback"


class RequestStatus(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"


class ActivityPurpose(StrEnum):
    CLEANING = "cleaning"
    VIEWING = "viewing"
    REPAIR = "repair"
    INSPECTION = "inspection"


S = RequestStatus
#: Allowed moves; closed and rejected are final.
TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    S.OPEN: frozenset({S.ASSIGNED, S.REJECTED}),
    S.ASSIGNED: frozenset({S.IN_PROGRESS, S.ASSIGNED, S.OPEN, S.REJECTED}),
    S.IN_PROGRESS: frozenset({S.RESOLVED, S.ASSIGNED}),
    S.RESOLVED: frozenset({S.CLOSED, S.IN_PROGRESS}),
    S.CLOSED: frozenset(),
    S.REJECTED: frozenset(),
}


class RequestStateConflict(Conflict):
    code = "request_state_conflict"


def check_transition(current: str, target: RequestStatus) -> None:
    if target not in TRANSITIONS[RequestStatus(current)]:
        raise RequestStateConflict(
            f"请求状态不能从 {current} 变为 {target.value} / a request cannot go from {current} "
            f"to {target.value}",
            details={
                "status": current,
                "allowed": sorted(s.value for s in TRANSITIONS[RequestStatus(current)]),
            },
        )


def check_body(text: str) -> str:
    """The request text: NFC, trimmed, 1–2000 characters, no control characters but newlines
    and tabs. It is stored sealed and returned verbatim (never rendered as markup)."""
    clean = unicodedata.normalize("NFC", text).strip()
    if len(clean) > MAX_BODY_CHARS:
        raise PayloadTooLarge(
            f"内容最多 {MAX_BODY_CHARS} 字 / at most {MAX_BODY_CHARS} characters",
            details={"field": "text", "max": MAX_BODY_CHARS},
        )
    if not clean or any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in clean):
        raise InvalidInput(
            "内容不能为空，且不能含控制字符 / text must be non-empty without control characters",
            details={"field": "text"},
        )
    return clean


def check_activity_window(started_at: datetime, ended_at: datetime | None) -> None:
    if started_at.tzinfo is None or (ended_at is not None and ended_at.tzinfo is None):
        raise InvalidInput(
            "时间须带时区 / times need a UTC offset", details={"field": "started_at"}
        )
    if ended_at is not None and not started_at < ended_at <= started_at + MAX_ACTIVITY:
        raise InvalidInput(
            "结束须晚于开始且不超过 48 小时 / the end must follow the start, within 48 hours",
            details={"field": "ended_at"},
        )
