"""Queries of tenants' requests, their timeline, staff activities and the access they used."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.models import AccessCredential
from anju.devices.models import Device
from anju.requests.models import StaffActivity, TenantRequest, TenantRequestChange
from anju.unlocks.models import UnlockRecord


class RequestsRepository:
    """Reads and writes of the request and activity tables in one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *rows: TenantRequest | TenantRequestChange | StaffActivity) -> None:
        self.session.add_all(rows)
        await self.session.flush()

    async def request(
        self, org_id: str | None, request_id: str, *, for_update: bool = False
    ) -> TenantRequest | None:
        query = select(TenantRequest).where(
            TenantRequest.id == request_id, TenantRequest.org_id == org_id
        )
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def requests(
        self,
        org_id: str | None,
        *,
        status: str | None = None,
        person_id: str | None = None,
        limit: int,
        offset: int,
    ) -> Sequence[TenantRequest]:
        query = select(TenantRequest).where(TenantRequest.org_id == org_id)
        if status is not None:
            query = query.where(TenantRequest.status == status)
        if person_id is not None:
            query = query.where(TenantRequest.person_id == person_id)
        query = query.order_by(TenantRequest.created_at.desc(), TenantRequest.id)
        return (await self.session.execute(query.limit(limit).offset(offset))).scalars().all()

    async def timeline(self, request_id: str) -> Sequence[TenantRequestChange]:
        query = (
            select(TenantRequestChange)
            .where(TenantRequestChange.request_id == request_id)
            .order_by(TenantRequestChange.id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def activity(self, org_id: str | None, activity_id: str) -> StaffActivity | None:
        query = select(StaffActivity).where(
            StaffActivity.id == activity_id, StaffActivity.org_id == org_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def activities(
        self, org_id: str | None, *, limit: int, offset: int
    ) -> Sequence[StaffActivity]:
        query = (
            select(StaffActivity)
            .where(StaffActivity.org_id == org_id)
            .order_by(StaffActivity.started_at.desc(), StaffActivity.id)
            .limit(limit)
            .offset(offset)
        )
        return (await self.session.execute(query)).scalars().all()

    async def org_devices(self, org_id: str | None, device_ids: Collection[str]) -> set[str]:
        """Those of ``device_ids`` that belong to the organisation."""
        query = select(Device.id).where(Device.id.in_(sorted(device_ids)), Device.org_id == org_id)
        return set((await self.session.execute(query)).scalars())

    async def access_used(
        self,
        org_id: str,
        subject: str,
        device_ids: Collection[str],
        since: datetime,
        until: datetime | None,
        limit: int,
    ) -> Sequence[UnlockRecord]:
        """Unlock records on the locks in [since, until] by the subject or its credentials."""
        credentials = select(AccessCredential.id).where(
            AccessCredential.org_id == org_id, AccessCredential.subject_id == subject
        )
        query = select(UnlockRecord).where(
            UnlockRecord.org_id == org_id,
            UnlockRecord.device_id.in_(sorted(device_ids)),
            UnlockRecord.at >= since,
            or_(UnlockRecord.subject == subject, UnlockRecord.credential_id.in_(credentials)),
        )
        if until is not None:
            query = query.where(UnlockRecord.at <= until)
        query = query.order_by(UnlockRecord.at, UnlockRecord.id).limit(limit)
        return (await self.session.execute(query)).scalars().all()
