"""Tenants' requests (created by the person through their access link or by staff; text sealed
under the person's key; status timeline; assignee) and staff activity records with the access
they used. The caller's transaction; the caller commits (docs/requests.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.audit import AuditLog
from anju.db import new_id
from anju.errors import InvalidInput, NotFound
from anju.people.models import Person
from anju.people.service import PeopleService, check_subject_id
from anju.platform import Platform
from anju.privacy.inventory import Purpose
from anju.privacy.vault import PIVault
from anju.requests.models import StaffActivity, TenantRequest, TenantRequestChange
from anju.requests.repository import RequestsRepository
from anju.requests.rules import (
    MAX_DOORS,
    ActivityPurpose,
    RequestKind,
    RequestStatus,
    check_activity_window,
    check_body,
    check_transition,
)
from anju.unlocks.service import record_view

BODY_FIELD = "tenant_request.body"
MAX_ACCESS_RECORDS = 500


def not_found() -> NotFound:
    return NotFound("请求不存在 / no such request")


@dataclass(frozen=True)
class NewRequest:
    kind: RequestKind
    text: str
    place_ref: str | None = None


def request_view(
    row: TenantRequest, text: str | None, timeline: Sequence[TenantRequestChange] = ()
) -> dict[str, Any]:
    """A request as staff or its person see it (``text`` None: not opened on this read)."""
    return {
        "id": row.id,
        "person_id": row.person_id,
        "kind": row.kind,
        "place_ref": row.place_ref,
        "text": text,
        "status": row.status,
        "assignee_id": row.assignee_id,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "timeline": [
            {
                "from_status": c.from_status,
                "to_status": c.to_status,
                "assignee_id": c.assignee_id,
                "actor": c.actor,
                "at": c.at,
            }
            for c in timeline
        ],
    }


def activity_view(row: StaffActivity, access: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "purpose": row.purpose,
        "device_ids": json.loads(row.device_ids),
        "request_id": row.request_id,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "recorded_by": row.recorded_by,
        "access_used": access,
    }


class RequestService:
    """Requests and staff activities of one transaction."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self.platform = platform
        self.session = session
        self.clock = platform.clock
        self.repo = RequestsRepository(session)
        self.vault = PIVault(platform)
        self.audit = AuditLog(platform)
        self.accounts = AccountService(platform, session)

    # --- creating --------------------------------------------------------------------------
    async def create(self, actor: str, person: Person, new: NewRequest) -> TenantRequest:
        """A new open request of ``person`` (the person themself or a staff member)."""
        if person.org_id is None:  # callers pass active people (link or active_person)
            raise InvalidInput("此人不属于任何机构 / the person belongs to no organisation")
        text = check_body(new.text)
        now = self.clock.now()
        row_id = new_id().replace("-", "")
        row = TenantRequest(
            id=row_id,
            org_id=person.org_id,
            person_id=person.id,
            subject_id=person.subject_id,
            kind=new.kind.value,
            place_ref=new.place_ref,
            body=await self.vault.seal(self.session, BODY_FIELD, person.subject_id, row_id, text),
            status=RequestStatus.OPEN.value,
            assignee_id=None,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        change = TenantRequestChange(
            request_id=row_id, from_status=None, to_status=row.status, actor=actor, at=now
        )
        await self.repo.add(row)
        await self.repo.add(change)
        await self.audit.record(
            self.session,
            action="requests.created",
            actor=actor,
            org_id=row.org_id,
            target=f"subject:{person.subject_id}",
            details={"request_id": row.id, "kind": row.kind},
        )
        return row

    async def create_for(
        self, principal: Principal, person_id: str, new: NewRequest
    ) -> TenantRequest:
        """Staff record a request on the person's behalf (``requests.manage``)."""
        AccountService.require(principal, Cap.REQUESTS_MANAGE)
        person = await PeopleService(self.platform, self.session).active_person(
            person_id, principal.org_id
        )
        return await self.create(principal.actor, person, new)

    # --- reading ---------------------------------------------------------------------------
    async def _open_text(self, row: TenantRequest, purpose: Purpose, actor: str) -> str:
        return await self.vault.open(
            self.session, BODY_FIELD, row.subject_id, row.id, row.body,
            purpose=purpose, actor=actor, org_id=row.org_id,
        )  # fmt: skip

    async def requests(
        self, principal: Principal, status: str | None, *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """The organisation's requests without their text (reading text is per request)."""
        AccountService.require(principal, Cap.REQUESTS_MANAGE)
        rows = await self.repo.requests(principal.org_id, status=status, limit=limit, offset=offset)
        return [request_view(r, None) for r in rows]

    async def detail(self, principal: Principal, request_id: str) -> dict[str, Any]:
        """One request with its text (an audited decryption, purpose ``service_request``)."""
        AccountService.require(principal, Cap.REQUESTS_MANAGE)
        row = await self.repo.request(principal.org_id, request_id)
        if row is None:
            raise not_found()
        text = await self._open_text(row, Purpose.SERVICE_REQUEST, principal.actor)
        return request_view(row, text, await self.repo.timeline(row.id))

    async def of_person(self, person: Person) -> list[dict[str, Any]]:
        """The person's own requests with text and timeline (purpose ``subject_access``)."""
        actor = f"person:{person.id}"
        out = []
        for row in await self.repo.requests(
            person.org_id, person_id=person.id, limit=200, offset=0
        ):
            text = await self._open_text(row, Purpose.SUBJECT_ACCESS, actor)
            out.append(request_view(row, text, await self.repo.timeline(row.id)))
        return out

    # --- status ----------------------------------------------------------------------------
    async def change_status(
        self,
        principal: Principal,
        request_id: str,
        target: RequestStatus,
        assignee_id: str | None = None,
    ) -> dict[str, Any]:
        """Move a request along open → assigned → in_progress → resolved → closed (or
        rejected); ``assigned`` names an account of the organisation."""
        AccountService.require(principal, Cap.REQUESTS_MANAGE)
        row = await self.repo.request(principal.org_id, request_id, for_update=True)
        if row is None:
            raise not_found()
        check_transition(row.status, target)
        if target is RequestStatus.ASSIGNED:
            if assignee_id is None:
                raise InvalidInput("指派须给出员工账号 / assigning needs an account", details={
                    "field": "assignee_id"})  # fmt: skip
            if len(assignee_id) > 36 or not await self.accounts.repo.account_in_org(
                assignee_id, principal.org_id
            ):
                raise NotFound("账号不存在 / no such account", details={"field": "assignee_id"})
            row.assignee_id = assignee_id
        elif assignee_id is not None:
            raise InvalidInput(
                "仅在指派时给出账号 / an assignee is given only when assigning",
                details={"field": "assignee_id"},
            )
        elif target is RequestStatus.OPEN:
            row.assignee_id = None
        now = self.clock.now()
        before, row.status, row.updated_at = row.status, target.value, now
        await self.repo.add(
            TenantRequestChange(
                request_id=row.id, from_status=before, to_status=row.status,
                assignee_id=row.assignee_id, actor=principal.actor, at=now,
            )
        )  # fmt: skip
        await self.audit.record(
            self.session,
            action="requests.status_changed",
            actor=principal.actor,
            org_id=row.org_id,
            target=f"tenant_request:{row.id}",
            details={"from": before, "to": row.status, "assignee_id": row.assignee_id},
        )
        return request_view(row, None, await self.repo.timeline(row.id))

    # --- staff activities ------------------------------------------------------------------
    async def record_activity(
        self,
        principal: Principal,
        *,
        account_id: str,
        access_subject: str,
        purpose: ActivityPurpose,
        device_ids: Sequence[str],
        started_at: datetime,
        ended_at: datetime | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Record a staff visit; every id must be the organisation's."""
        AccountService.require(principal, Cap.REQUESTS_MANAGE)
        check_subject_id(access_subject)
        check_activity_window(started_at, ended_at)
        doors = sorted(set(device_ids))
        if not 1 <= len(doors) <= MAX_DOORS:
            raise InvalidInput(
                f"门锁须为 1–{MAX_DOORS} 个 / 1–{MAX_DOORS} locks", details={"field": "device_ids"}
            )
        if len(account_id) > 36 or not await self.accounts.repo.account_in_org(
            account_id, principal.org_id
        ):
            raise NotFound("账号不存在 / no such account", details={"field": "account_id"})
        if await self.repo.org_devices(principal.org_id, doors) != set(doors):
            raise NotFound("门锁不存在 / no such lock", details={"field": "device_ids"})
        if request_id is not None and await self.repo.request(principal.org_id, request_id) is None:
            raise not_found()
        assert principal.org_id is not None  # account_in_org found an account of this org
        row = StaffActivity(
            id=new_id().replace("-", ""),
            org_id=principal.org_id,
            account_id=account_id,
            access_subject=access_subject,
            purpose=purpose.value,
            device_ids=json.dumps(doors),
            request_id=request_id,
            started_at=started_at,
            ended_at=ended_at,
            recorded_by=principal.actor,
            created_at=self.clock.now(),
        )
        await self.repo.add(row)
        await self.audit.record(
            self.session,
            action="requests.activity_recorded",
            actor=principal.actor,
            org_id=row.org_id,
            target=f"staff_activity:{row.id}",
            details={"account_id": account_id, "purpose": row.purpose, "doors": len(doors)},
        )
        return activity_view(row, None)

    async def end_activity(
        self, principal: Principal, activity_id: str, ended_at: datetime
    ) -> dict[str, Any]:
        AccountService.require(principal, Cap.REQUESTS_MANAGE)
        row = await self.repo.activity(principal.org_id, activity_id)
        if row is None:
            raise NotFound("作业记录不存在 / no such activity")
        if row.ended_at is not None:
            raise InvalidInput("作业已结束 / the activity has already ended")
        check_activity_window(row.started_at, ended_at)
        row.ended_at = ended_at
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="requests.activity_ended",
            actor=principal.actor,
            org_id=row.org_id,
            target=f"staff_activity:{row.id}",
        )
        return activity_view(row, None)

    async def activity(self, principal: Principal, activity_id: str) -> dict[str, Any]:
        """One activity with the unlock records of the staff member's access on its locks in
        its window (subjects masked unless the caller holds ``pi.read``)."""
        AccountService.require(principal, Cap.REQUESTS_MANAGE)
        row = await self.repo.activity(principal.org_id, activity_id)
        if row is None:
            raise NotFound("作业记录不存在 / no such activity")
        records = await self.repo.access_used(
            row.org_id, row.access_subject, json.loads(row.device_ids),
            row.started_at, row.ended_at, MAX_ACCESS_RECORDS,
        )  # fmt: skip
        reveal = principal.has(Cap.PI_READ)
        return activity_view(row, [record_view(r, reveal_subject=reveal) for r in records])

    async def activities(
        self, principal: Principal, *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        AccountService.require(principal, Cap.REQUESTS_MANAGE)
        rows = await self.repo.activities(principal.org_id, limit=limit, offset=offset)
        return [activity_view(r, None) for r in rows]
