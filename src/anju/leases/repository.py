"""Queries of leases, tenants, instalments, payments and lease settings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.leases.models import Instalment, Lease, LeaseSettings, LeaseTenant, Payment
from anju.leases.rules import LeaseStatus
from anju.people.models import Person


class LeasesRepository:
    """Reads and writes of the lease tables (every lease query filtered by organisation)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: object) -> None:
        self.session.add(row)

    async def lease(self, org_id: str, lease_id: str, *, for_update: bool = False) -> Lease | None:
        query = select(Lease).where(Lease.id == lease_id, Lease.org_id == org_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def leases(
        self,
        org_id: str,
        *,
        room_id: str | None,
        status: str | None,
        limit: int,
        offset: int,
    ) -> Sequence[Lease]:
        query = select(Lease).where(Lease.org_id == org_id)
        if room_id is not None:
            query = query.where(Lease.room_id == room_id)
        if status is not None:
            query = query.where(Lease.status == status)
        query = query.order_by(Lease.created_at.desc(), Lease.id).limit(limit).offset(offset)
        return (await self.session.execute(query)).scalars().all()

    async def overlapping_active(
        self, room_id: str, start: date, end: date, *, other_than: str
    ) -> Lease | None:
        query = select(Lease).where(
            Lease.room_id == room_id,
            Lease.status == LeaseStatus.ACTIVE,
            Lease.id != other_than,
            Lease.start_date <= end,
            Lease.end_date >= start,
        )
        return (await self.session.execute(query.limit(1))).scalars().first()

    async def active_leases(self, *, limit: int, after: str = "") -> Sequence[Lease]:
        """Active leases of every organisation, by id (the sweep pages through them)."""
        query = (
            select(Lease)
            .where(Lease.status == LeaseStatus.ACTIVE, Lease.id > after)
            .order_by(Lease.id)
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def tenants(self, lease_id: str) -> Sequence[LeaseTenant]:
        query = select(LeaseTenant).where(LeaseTenant.lease_id == lease_id)
        return (await self.session.execute(query.order_by(LeaseTenant.subject_id))).scalars().all()

    async def instalments(self, lease_id: str) -> Sequence[Instalment]:
        query = select(Instalment).where(Instalment.lease_id == lease_id).order_by(Instalment.seq)
        return (await self.session.execute(query)).scalars().all()

    async def payments(self, lease_id: str) -> Sequence[Payment]:
        query = (
            select(Payment)
            .where(Payment.lease_id == lease_id)
            .order_by(Payment.recorded_at, Payment.id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def payment_by_key(self, lease_id: str, key: str) -> Payment | None:
        query = select(Payment).where(Payment.lease_id == lease_id, Payment.idempotency_key == key)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def active_person(self, org_id: str, subject_id: str) -> Person | None:
        """A person registered in the organisation under ``subject_id`` and not deleted."""
        query = select(Person).where(
            Person.subject_id == subject_id, Person.org_id == org_id, Person.status == "active"
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def settings(self, org_id: str, *, for_update: bool = False) -> LeaseSettings | None:
        query = select(LeaseSettings).where(LeaseSettings.org_id == org_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()
