"""Queries of alarms and their changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.alarms.models import Alarm, AlarmChange
from anju.alarms.rules import OPEN


@dataclass(frozen=True)
class AlarmFilter:
    status: str | None = None
    kind: str | None = None
    severity: str | None = None
    device_id: str | None = None


class AlarmsRepository:
    """Reads and writes of the alarm tables."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def alarm(self, alarm_id: str, *, for_update: bool = False) -> Alarm | None:
        query = select(Alarm).where(Alarm.id == alarm_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def open_alarm(
        self, org_id: str | None, kind: str, device_id: str | None, subject: str | None
    ) -> Alarm | None:
        """The open alarm a new raise of the same thing repeats, if any (locked)."""
        query = select(Alarm).where(
            Alarm.org_id.is_(None) if org_id is None else Alarm.org_id == org_id,
            Alarm.kind == kind,
            Alarm.device_id.is_(None) if device_id is None else Alarm.device_id == device_id,
            Alarm.subject.is_(None) if subject is None else Alarm.subject == subject,
            Alarm.status.in_(OPEN),
        )
        return (await self.session.execute(query.with_for_update())).scalars().first()

    async def open_of_device(self, device_id: str, kind: str) -> Sequence[Alarm]:
        query = select(Alarm).where(
            Alarm.device_id == device_id, Alarm.kind == kind, Alarm.status.in_(OPEN)
        )
        return (await self.session.execute(query.with_for_update())).scalars().all()

    async def alarms(
        self, org_id: str | None, where: AlarmFilter, *, limit: int, offset: int
    ) -> Sequence[Alarm]:
        query = select(Alarm)
        if org_id is not None:
            query = query.where(Alarm.org_id == org_id)
        if where.status is not None:
            query = query.where(Alarm.status == where.status)
        if where.kind is not None:
            query = query.where(Alarm.kind == where.kind)
        if where.severity is not None:
            query = query.where(Alarm.severity == where.severity)
        if where.device_id is not None:
            query = query.where(Alarm.device_id == where.device_id)
        query = query.order_by(Alarm.last_raised_at.desc(), Alarm.id).limit(limit).offset(offset)
        return (await self.session.execute(query)).scalars().all()

    async def last_change_id(self) -> int:
        return int((await self.session.execute(select(func.max(AlarmChange.id)))).scalar() or 0)

    async def changes_after(
        self, org_id: str | None, after: int, limit: int
    ) -> Sequence[tuple[AlarmChange, Alarm]]:
        query = (
            select(AlarmChange, Alarm)
            .join(Alarm, Alarm.id == AlarmChange.alarm_id)
            .where(AlarmChange.id > after)
            .order_by(AlarmChange.id)
            .limit(limit)
        )
        if org_id is not None:
            query = query.where(AlarmChange.org_id == org_id)
        return [(row[0], row[1]) for row in await self.session.execute(query)]
