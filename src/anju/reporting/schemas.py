"""HTTP shapes of regulator reports: references and delivery state, never PI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel

from anju.reporting.models import Report, ReportAttempt


class ReportOut(BaseModel):
    id: str  # also the idempotency key the regulator de-duplicates by
    kind: str
    stay_id: str | None
    subject_id: str | None  # pseudonymous
    room_id: str | None
    occurred_at: datetime | None
    window_since: datetime | None
    window_until: datetime | None
    record_count: int
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None


class ReportAttemptOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    outcome: str  # delivered | retry | parked


class ReportDetailOut(ReportOut):
    unlock_ids: list[str]
    delivery_log: list[ReportAttemptOut]


def report_out(r: Report) -> ReportOut:
    return ReportOut(
        id=r.id,
        kind=r.kind,
        stay_id=r.stay_id,
        subject_id=r.subject_id,
        room_id=r.room_id,
        occurred_at=r.occurred_at,
        window_since=r.window_since,
        window_until=r.window_until,
        record_count=r.record_count,
        status=r.status,
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        created_at=r.created_at,
        delivered_at=r.delivered_at,
        last_status_code=r.last_status_code,
        last_error=r.last_error,
    )


def report_detail_out(r: Report, attempts: Sequence[ReportAttempt]) -> ReportDetailOut:
    log = [
        ReportAttemptOut(
            attempt=a.attempt,
            at=a.at,
            status_code=a.status_code,
            latency_ms=a.latency_ms,
            error=a.error,
            outcome=a.outcome,
        )
        for a in attempts
    ]
    return ReportDetailOut(
        **report_out(r).model_dump(),
        unlock_ids=json.loads(r.unlock_ids or "[]"),
        delivery_log=log,
    )
