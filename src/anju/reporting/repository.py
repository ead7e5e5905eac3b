"""Queries of the regulator report outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.people.models import Person
from anju.reporting.models import Report, ReportAttempt, ReportedUnlock
from anju.reporting.rules import ReportStatus
from anju.unlocks.models import UnlockRecord


class ReportingRepository:
    """Reads and writes of the reporting tables (and the rows they refer to)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def report(self, report_id: str) -> Report | None:
        return await self.session.get(Report, report_id)

    async def reports_by_id(self, ids: Sequence[str]) -> dict[str, Report]:
        """The reports among ``ids`` that exist, by id (one query)."""
        if not ids:
            return {}
        query = select(Report).where(Report.id.in_(list(ids)))
        return {r.id: r for r in (await self.session.execute(query)).scalars()}

    async def by_dedup_key(self, key: str) -> Report | None:
        query = select(Report).where(Report.dedup_key == key)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def reports(
        self, org_id: str | None, status: str | None, *, limit: int, offset: int
    ) -> Sequence[Report]:
        """Reports newest first (of one organisation, or all with ``org_id`` None)."""
        query = select(Report)
        if org_id is not None:
            query = query.where(Report.org_id == org_id)
        if status is not None:
            query = query.where(Report.status == status)
        query = query.order_by(Report.created_at.desc(), Report.id).limit(limit).offset(offset)
        return (await self.session.execute(query)).scalars().all()

    async def counts(self) -> dict[str, int]:
        """Reports per status."""
        query = select(Report.status, func.count()).group_by(Report.status)
        return {str(s): int(n) for s, n in (await self.session.execute(query)).all()}

    async def attempts(self, report_id: str) -> Sequence[ReportAttempt]:
        query = (
            select(ReportAttempt)
            .where(ReportAttempt.report_id == report_id)
            .order_by(ReportAttempt.id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def due(self, now: datetime, limit: int) -> Sequence[Report]:
        """Pending reports due now, oldest first, locked (others' locked rows skipped)."""
        query = (
            select(Report)
            .where(Report.status == ReportStatus.PENDING, Report.next_attempt_at <= now)
            .order_by(Report.next_attempt_at, Report.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(query)).scalars().all()

    async def person_of(self, org_id: str, subject_id: str) -> Person | None:
        query = select(Person).where(Person.subject_id == subject_id, Person.org_id == org_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def unreported_unlocks(
        self, org_id: str, since: datetime, until: datetime
    ) -> Sequence[str]:
        """Ids of granted unlocks of ``org_id`` with lock time in [since, until) not yet in a
        report, oldest first."""
        query = (
            select(UnlockRecord.id)
            .where(
                UnlockRecord.org_id == org_id,
                UnlockRecord.result == "granted",
                UnlockRecord.at >= since,
                UnlockRecord.at < until,
                ~exists().where(ReportedUnlock.unlock_id == UnlockRecord.id),
            )
            .order_by(UnlockRecord.at, UnlockRecord.id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def unlocks(self, ids: Sequence[str]) -> Sequence[UnlockRecord]:
        """The unlock records among ``ids`` that still exist, oldest first."""
        if not ids:
            return []
        query = (
            select(UnlockRecord)
            .where(UnlockRecord.id.in_(list(ids)))
            .order_by(UnlockRecord.at, UnlockRecord.id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def purge_delivered(self, before: datetime) -> int:
        """Delete delivered reports created before ``before`` with their attempts and unlock
        references (parked and pending ones stay until they are resolved)."""
        ids = select(Report.id).where(
            Report.status == ReportStatus.DELIVERED, Report.created_at < before
        )
        await self.session.execute(delete(ReportAttempt).where(ReportAttempt.report_id.in_(ids)))
        await self.session.execute(delete(ReportedUnlock).where(ReportedUnlock.report_id.in_(ids)))
        result = await self.session.execute(delete(Report).where(Report.id.in_(ids)))
        return int(getattr(result, "rowcount", 0) or 0)
