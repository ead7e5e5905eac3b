"""Queries of unlock records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.unlocks.models import UnlockRecord


@dataclass(frozen=True)
class UnlockFilter:
    """Search criteria; None means any."""

    device_id: str | None = None
    place_kind: str | None = None
    place_ref: str | None = None
    subject: str | None = None
    method: str | None = None
    result: str | None = None
    since: datetime | None = None  # lock time, inclusive
    until: datetime | None = None  # lock time, exclusive

    def names(self) -> list[str]:
        """The criteria in use (for the audit entry: names only, never values)."""
        return [k for k, v in vars(self).items() if v is not None]


class UnlocksRepository:
    """Reads and writes of ``unlock_records``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, record_id: str) -> UnlockRecord | None:
        return await self.session.get(UnlockRecord, record_id)

    async def search(
        self, org_id: str | None, where: UnlockFilter, *, limit: int, offset: int
    ) -> Sequence[UnlockRecord]:
        query = select(UnlockRecord)
        if org_id is not None:
            query = query.where(UnlockRecord.org_id == org_id)
        for column, value in (
            (UnlockRecord.device_id, where.device_id),
            (UnlockRecord.place_kind, where.place_kind),
            (UnlockRecord.place_ref, where.place_ref),
            (UnlockRecord.subject, where.subject),
            (UnlockRecord.method, where.method),
            (UnlockRecord.result, where.result),
        ):
            if value is not None:
                query = query.where(column == value)
        if where.since is not None:
            query = query.where(UnlockRecord.at >= where.since)
        if where.until is not None:
            query = query.where(UnlockRecord.at < where.until)
        query = query.order_by(UnlockRecord.at.desc(), UnlockRecord.id).limit(limit).offset(offset)
        return (await self.session.execute(query)).scalars().all()

    async def denials_between(
        self, org_id: str | None, since: datetime, until: datetime, device_id: str | None = None
    ) -> int:
        """Denied attempts with lock time in [since, until] (at one device, or org-wide)."""
        query = select(func.count()).where(
            UnlockRecord.result == "denied",
            UnlockRecord.at >= since,
            UnlockRecord.at <= until,
            UnlockRecord.org_id.is_(None) if org_id is None else UnlockRecord.org_id == org_id,
        )
        if device_id is not None:
            query = query.where(UnlockRecord.device_id == device_id)
        return int((await self.session.execute(query)).scalar_one())

    async def received_before(self, cutoff: datetime, limit: int) -> list[tuple[str, str | None]]:
        """Up to ``limit`` records received before ``cutoff``: (id, subject), oldest first."""
        query = (
            select(UnlockRecord.id, UnlockRecord.subject)
            .where(UnlockRecord.received_at < cutoff)
            .order_by(UnlockRecord.received_at, UnlockRecord.id)
            .limit(limit)
        )
        return [(row_id, subject) for row_id, subject in (await self.session.execute(query)).all()]

    async def delete_records(self, ids: Sequence[str]) -> int:
        result = await self.session.execute(delete(UnlockRecord).where(UnlockRecord.id.in_(ids)))
        return int(getattr(result, "rowcount", 0) or 0)
