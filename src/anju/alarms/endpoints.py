"""HTTP endpoints under /api/v1/alarms: list, get, acknowledge, clear, and the live stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from anju.accounts.deps import BearerToken, CurrentPrincipal
from anju.accounts.roles import Cap
from anju.alarms.repository import AlarmFilter
from anju.alarms.rules import AlarmStatus, Severity
from anju.alarms.service import AlarmService, alarm_summary
from anju.alarms.stream import alarm_stream, open_stream
from anju.api.deps import DbSession, PlatformDep

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])
AlarmId = Annotated[str, Path(min_length=1, max_length=64)]


class AlarmOut(BaseModel):
    id: str
    kind: str
    source: str
    severity: str
    status: str
    title_zh: str
    title_en: str
    device_id: str | None
    place_kind: str | None
    place_ref: str | None
    subject: str | None  # masked unless the caller holds pi.read
    count: int
    details: dict[str, Any]
    raised_at: str
    last_raised_at: str
    acknowledged_by: str | None
    acknowledged_at: str | None
    cleared_by: str | None
    cleared_at: str | None


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str | None, Field(max_length=500)] = None


@router.get("", response_model=list[AlarmOut])
async def list_alarms(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
    alarm_status: Annotated[AlarmStatus | None, Query(alias="status")] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    severity: Severity | None = None,
    device_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[AlarmOut]:
    """The organisation's alarms, most recently raised first."""
    where = AlarmFilter(
        alarm_status.value if alarm_status else None,
        kind,
        severity.value if severity else None,
        device_id,
    )
    rows = await AlarmService(platform, session).alarms(
        principal, where, limit=limit, offset=offset
    )
    reveal = principal.has(Cap.PI_READ)
    return [AlarmOut(**alarm_summary(a, reveal_subject=reveal)) for a in rows]


@router.get("/stream")
async def stream_alarms(
    token: BearerToken,
    platform: PlatformDep,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Server-Sent Events: each new or changed alarm of the organisation within a second."""
    state = await open_stream(platform, token, last_event_id)
    body: AsyncIterator[bytes] = alarm_stream(platform, token, state)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/{alarm_id}", response_model=AlarmOut)
async def get_alarm(
    alarm_id: AlarmId, principal: CurrentPrincipal, platform: PlatformDep, session: DbSession
) -> AlarmOut:
    alarm = await AlarmService(platform, session).alarm(principal, alarm_id)
    return AlarmOut(**alarm_summary(alarm, reveal_subject=principal.has(Cap.PI_READ)))


@router.post("/{alarm_id}/acknowledge", response_model=AlarmOut)
async def acknowledge_alarm(
    alarm_id: AlarmId,
    body: NoteIn,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
) -> AlarmOut:
    """Take the alarm on (active → acknowledged)."""
    alarm = await AlarmService(platform, session).acknowledge(principal, alarm_id, body.note)
    return AlarmOut(**alarm_summary(alarm, reveal_subject=principal.has(Cap.PI_READ)))


@router.post("/{alarm_id}/clear", response_model=AlarmOut)
async def clear_alarm(
    alarm_id: AlarmId,
    body: NoteIn,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
) -> AlarmOut:
    """Close the alarm (→ cleared)."""
    alarm = await AlarmService(platform, session).clear(principal, alarm_id, body.note)
    return AlarmOut(**alarm_summary(alarm, reveal_subject=principal.has(Cap.PI_READ)))
