"""HTTP endpoints under /api/v1/unlocks: search unlock records, re-verify one (docs/records.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from anju.accounts.deps import CurrentPrincipal
from anju.api.deps import DbSession, PlatformDep
from anju.protocol.access import UnlockMethod
from anju.unlocks.repository import UnlockFilter
from anju.unlocks.rules import RESULTS
from anju.unlocks.service import UnlockService

router = APIRouter(prefix="/api/v1/unlocks", tags=["unlock records"])


class UnlockRecordOut(BaseModel):
    id: str
    device_id: str
    event_id: str
    place_kind: str | None
    place_ref: str | None
    subject: str | None  # masked unless the caller holds pi.read
    credential_id: str | None
    offline_serial: int | None
    method: str
    result: str
    reason: str | None
    at: datetime
    received_at: datetime


class VerificationOut(BaseModel):
    record_id: str
    device_id: str
    valid: bool
    reason: str | None


Short = Annotated[str | None, Query(max_length=100)]


@router.get("", response_model=list[UnlockRecordOut])
async def search_records(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
    device_id: Short = None,
    place_kind: Short = None,
    place_ref: Short = None,
    subject: Short = None,
    method: UnlockMethod | None = None,
    result: Annotated[str | None, Query(pattern="^(" + "|".join(RESULTS) + ")$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[UnlockRecordOut]:
    """Unlock attempts by door, device, person, lock time, method and result, newest first."""
    where = UnlockFilter(
        device_id=device_id,
        place_kind=place_kind,
        place_ref=place_ref,
        subject=subject,
        method=method.value if method else None,
        result=result,
        since=since,
        until=until,
    )
    rows = await UnlockService(platform, session).search(
        principal, where, limit=limit, offset=offset
    )
    return [UnlockRecordOut(**row) for row in rows]


@router.post("/{record_id}/verify", response_model=VerificationOut)
async def verify_record(
    record_id: Annotated[str, Path(min_length=1, max_length=64)],
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
) -> VerificationOut:
    """Re-verify a record's SM2 signature with the device's registry public key."""
    checked = await UnlockService(platform, session).verify(principal, record_id)
    return VerificationOut(**vars(checked))
