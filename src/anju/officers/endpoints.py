"""HTTP endpoints of officer queries (docs/officers.md).

- ``PUT|GET /api/v1/officer/jurisdictions/{account_id}`` — an officer's region prefixes
  (``roles.grant`` and a recent second factor to change; officers may read their own).
- ``POST /api/v1/officer/queries/person`` and ``/lock`` — queries with a legal basis
  (``officer.query``); refusals are recorded and committed before the error is returned.
- ``GET /api/v1/officer-queries`` — the record of queries (``audit.read``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from anju.accounts.deps import BearerToken, CurrentPrincipal
from anju.accounts.roles import Cap
from anju.api.deps import DbSession, PlatformDep
from anju.biometrics.access import authorised
from anju.officers.schemas import (
    AnswerOut,
    JurisdictionIn,
    JurisdictionOut,
    LockQueryIn,
    OfficerQueryOut,
    PersonQueryIn,
)
from anju.officers.service import Answer, LockTarget, OfficerService, query_view

router = APIRouter(prefix="/api/v1", tags=["officers"])
AccountIdPath = Annotated[str, Path(min_length=1, max_length=36)]


def _answer(answer: Answer) -> AnswerOut:
    if answer.refusal is not None:  # recorded and committed: now tell the officer
        raise answer.refusal
    return AnswerOut(
        query_id=answer.query_id,
        basis_type=answer.basis_type,
        unmasked=answer.unmasked,
        result_count=answer.count,
        people=answer.people,
        grants=answer.grants,
        unlocks=answer.unlocks,
    )


@router.put("/officer/jurisdictions/{account_id}", response_model=JurisdictionOut)
async def set_jurisdiction(
    account_id: AccountIdPath,
    body: JurisdictionIn,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
) -> JurisdictionOut:
    """设置执法人员辖区 / Replace an officer's jurisdiction (region-code prefixes)."""
    prefixes = await OfficerService(platform, session).set_jurisdiction(
        principal, account_id, body.region_prefixes
    )
    return JurisdictionOut(account_id=account_id, region_prefixes=prefixes)


@router.get("/officer/jurisdictions/{account_id}", response_model=JurisdictionOut)
async def get_jurisdiction(
    account_id: AccountIdPath,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
) -> JurisdictionOut:
    prefixes = await OfficerService(platform, session).jurisdiction(principal, account_id)
    return JurisdictionOut(account_id=account_id, region_prefixes=prefixes)


@router.post("/officer/queries/person", response_model=AnswerOut)
async def query_person(body: PersonQueryIn, token: BearerToken, platform: PlatformDep) -> AnswerOut:
    """按证件查人 / A person's registrations, grants and unlock records in the jurisdiction."""
    basis = body.basis.checked()
    async with authorised(platform, token, Cap.OFFICER_QUERY, "officers.query") as (s, p):
        answer = await OfficerService(platform, s).query_person(
            p, basis, body.document_type, body.document_number, unmask=body.unmask
        )
    return _answer(answer)


@router.post("/officer/queries/lock", response_model=AnswerOut)
async def query_lock(body: LockQueryIn, token: BearerToken, platform: PlatformDep) -> AnswerOut:
    """按门锁或房间查开锁记录 / Unlock records of a lock or a room's locks in a time window
    (jurisdiction only)."""
    basis = body.basis.checked()
    target = LockTarget(body.device_id, body.room_id)
    async with authorised(platform, token, Cap.OFFICER_QUERY, "officers.query") as (s, p):
        answer = await OfficerService(platform, s).query_lock(
            p, basis, target, body.since, body.until, unmask=body.unmask
        )
    return _answer(answer)


@router.get("/officer-queries", response_model=list[OfficerQueryOut])
async def list_queries(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[OfficerQueryOut]:
    """执法查询记录 / The record of officer queries (auditors), newest first."""
    rows = await OfficerService(platform, session).queries(principal, limit=limit, offset=offset)
    return [OfficerQueryOut(**query_view(r)) for r in rows]
