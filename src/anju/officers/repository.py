"""Queries of officer jurisdictions, the officer query record, and the read-only look-ups an
officer query makes into people, access grants and unlock records."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.models import AccessGrant
from anju.devices.models import Device
from anju.officers.models import OfficerJurisdiction, OfficerQuery
from anju.people.models import Person
from anju.properties.models import Room, RoomLock
from anju.unlocks.models import UnlockRecord


class OfficersRepository:
    """Reads and writes of the officer tables, and reads of what officers may see."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- jurisdictions ---------------------------------------------------------------------
    async def prefixes(self, account_id: str) -> list[str]:
        query = (
            select(OfficerJurisdiction.region_prefix)
            .where(OfficerJurisdiction.account_id == account_id)
            .order_by(OfficerJurisdiction.region_prefix)
        )
        return list((await self.session.execute(query)).scalars())

    async def replace_prefixes(self, rows: Sequence[OfficerJurisdiction], account_id: str) -> None:
        await self.session.execute(
            delete(OfficerJurisdiction).where(OfficerJurisdiction.account_id == account_id)
        )
        self.session.add_all(rows)
        await self.session.flush()

    # --- the query record (insert only) ----------------------------------------------------
    async def add_query(self, row: OfficerQuery) -> None:
        self.session.add(row)
        await self.session.flush()

    async def queries(
        self, officer_org_id: str | None, *, limit: int, offset: int
    ) -> Sequence[OfficerQuery]:
        """Newest first; all of them when ``officer_org_id`` is None (platform auditor)."""
        query = select(OfficerQuery)
        if officer_org_id is not None:
            query = query.where(OfficerQuery.officer_org_id == officer_org_id)
        query = query.order_by(OfficerQuery.at.desc(), OfficerQuery.id).limit(limit).offset(offset)
        return (await self.session.execute(query)).scalars().all()

    # --- what an answer is made of ---------------------------------------------------------
    async def device(self, device_id: str) -> Device | None:
        return await self.session.get(Device, device_id)

    async def room_locks(self, room_id: str) -> tuple[str, list[str]] | None:
        """The room's organisation and the locks bound to it now (None: no such room)."""
        room = await self.session.get(Room, room_id)
        if room is None:
            return None
        query = select(RoomLock.device_id).where(RoomLock.room_id == room.id)
        return room.org_id, sorted((await self.session.execute(query)).scalars())

    async def people_by_document(
        self, document_index: bytes, org_ids: Collection[str], limit: int
    ) -> Sequence[Person]:
        """Active registrations of this document (blind index) in the organisations."""
        if not org_ids:
            return []
        query = (
            select(Person)
            .where(
                Person.document_index == document_index,
                Person.org_id.in_(sorted(org_ids)),
                Person.status == "active",
            )
            .order_by(Person.created_at, Person.id)
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def grants_of(
        self, subject_ids: Collection[str], org_ids: Collection[str], limit: int
    ) -> Sequence[AccessGrant]:
        if not subject_ids or not org_ids:
            return []
        query = (
            select(AccessGrant)
            .where(
                AccessGrant.subject_id.in_(sorted(subject_ids)),
                AccessGrant.org_id.in_(sorted(org_ids)),
            )
            .order_by(AccessGrant.created_at.desc(), AccessGrant.id)
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def unlocks_of(
        self, subject_ids: Collection[str], org_ids: Collection[str], limit: int
    ) -> Sequence[UnlockRecord]:
        if not subject_ids or not org_ids:
            return []
        query = (
            select(UnlockRecord)
            .where(
                UnlockRecord.subject.in_(sorted(subject_ids)),
                UnlockRecord.org_id.in_(sorted(org_ids)),
            )
            .order_by(UnlockRecord.at.desc(), UnlockRecord.id)
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def unlocks_at(
        self, device_ids: Collection[str], org_id: str, since: datetime, until: datetime, limit: int
    ) -> Sequence[UnlockRecord]:
        """Records of the locks with lock time in [since, until), newest first."""
        if not device_ids:
            return []
        query = (
            select(UnlockRecord)
            .where(
                UnlockRecord.org_id == org_id,
                UnlockRecord.device_id.in_(sorted(device_ids)),
                UnlockRecord.at >= since,
                UnlockRecord.at < until,
            )
            .order_by(UnlockRecord.at.desc(), UnlockRecord.id)
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()
