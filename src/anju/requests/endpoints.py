"""HTTP endpoints of tenants' requests and staff activities (docs/requests.md).

Staff (``requests.manage``): ``POST|GET /api/v1/requests``, ``GET /api/v1/requests/{id}`` (the
text: an audited decryption), ``POST /api/v1/requests/{id}/status``; ``POST|GET
/api/v1/staff-activities``, ``GET /api/v1/staff-activities/{id}`` (with the access used),
``POST /api/v1/staff-activities/{id}/end``. The person (bearer = their access link):
``POST|GET /api/v1/requests/self``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from anju.accounts.deps import BearerToken, CurrentPrincipal
from anju.api.deps import DbSession, PlatformDep
from anju.people.rights import SubjectRights, subject_actor
from anju.requests.rules import RequestStatus
from anju.requests.schemas import (
    ActivityEndIn,
    ActivityIn,
    ActivityOut,
    RequestOut,
    SelfRequestIn,
    StaffRequestIn,
    StatusIn,
)
from anju.requests.service import RequestService, request_view

router = APIRouter(prefix="/api/v1", tags=["requests"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@router.post("/requests/self", response_model=RequestOut, status_code=status.HTTP_201_CREATED)
async def create_own_request(
    body: SelfRequestIn, token: BearerToken, platform: PlatformDep
) -> RequestOut:
    """本人报修或反馈 / The person files a repair request or feedback (access link)."""
    async with platform.db.transaction() as session:
        person = await SubjectRights(platform, session).person_for_link(token)
        row = await RequestService(platform, session).create(
            subject_actor(person).actor, person, body.new()
        )
        out = RequestOut(**request_view(row, None))
    return out


@router.get("/requests/self", response_model=list[RequestOut])
async def own_requests(token: BearerToken, platform: PlatformDep) -> list[RequestOut]:
    """本人的报修与反馈及进度 / The person's own requests with their progress."""
    async with platform.db.transaction() as session:
        person = await SubjectRights(platform, session).person_for_link(token)
        rows = await RequestService(platform, session).of_person(person)
    return [RequestOut(**r) for r in rows]


@router.post("/requests", response_model=RequestOut, status_code=status.HTTP_201_CREATED)
async def create_request(
    body: StaffRequestIn, principal: CurrentPrincipal, platform: PlatformDep, session: DbSession
) -> RequestOut:
    """员工代为登记 / Staff record a request on a person's behalf."""
    row = await RequestService(platform, session).create_for(principal, body.person_id, body.new())
    return RequestOut(**request_view(row, None))


@router.get("/requests", response_model=list[RequestOut])
async def list_requests(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
    request_status: Annotated[RequestStatus | None, Query(alias="status")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[RequestOut]:
    """The organisation's requests, newest first, without their text."""
    rows = await RequestService(platform, session).requests(
        principal, request_status.value if request_status else None, limit=limit, offset=offset
    )
    return [RequestOut(**r) for r in rows]


@router.get("/requests/{request_id}", response_model=RequestOut)
async def get_request(
    request_id: IdPath, principal: CurrentPrincipal, platform: PlatformDep, session: DbSession
) -> RequestOut:
    return RequestOut(**await RequestService(platform, session).detail(principal, request_id))


@router.post("/requests/{request_id}/status", response_model=RequestOut)
async def change_status(
    request_id: IdPath,
    body: StatusIn,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
) -> RequestOut:
    """Move the request along its states (assigning names a staff account)."""
    out = await RequestService(platform, session).change_status(
        principal, request_id, body.status, body.assignee_id
    )
    return RequestOut(**out)


@router.post("/staff-activities", response_model=ActivityOut, status_code=status.HTTP_201_CREATED)
async def record_activity(
    body: ActivityIn, principal: CurrentPrincipal, platform: PlatformDep, session: DbSession
) -> ActivityOut:
    """员工作业记录 / Record a staff visit (cleaning, viewing, repair, inspection)."""
    out = await RequestService(platform, session).record_activity(
        principal,
        account_id=body.account_id,
        access_subject=body.access_subject,
        purpose=body.purpose,
        device_ids=body.device_ids,
        started_at=body.started_at,
        ended_at=body.ended_at,
        request_id=body.request_id,
    )
    return ActivityOut(**out)


@router.get("/staff-activities", response_model=list[ActivityOut])
async def list_activities(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ActivityOut]:
    rows = await RequestService(platform, session).activities(principal, limit=limit, offset=offset)
    return [ActivityOut(**r) for r in rows]


@router.get("/staff-activities/{activity_id}", response_model=ActivityOut)
async def get_activity(
    activity_id: IdPath, principal: CurrentPrincipal, platform: PlatformDep, session: DbSession
) -> ActivityOut:
    """One visit with the unlock records of the access it used."""
    return ActivityOut(**await RequestService(platform, session).activity(principal, activity_id))


@router.post("/staff-activities/{activity_id}/end", response_model=ActivityOut)
async def end_activity(
    activity_id: IdPath,
    body: ActivityEndIn,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
) -> ActivityOut:
    out = await RequestService(platform, session).end_activity(
        principal, activity_id, body.ended_at
    )
    return ActivityOut(**out)
