"""Queries of the consent domain (notices and consent events); no rules live here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from anju.consent.models import ConsentEvent, Notice


class ConsentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: Notice | ConsentEvent) -> bool:
        """Insert ``row``; False when a concurrent writer took its version or sequence number."""
        try:
            async with self.session.begin_nested():
                self.session.add(row)
                await self.session.flush()
        except DbIntegrityError:
            return False
        return True

    # --- notices ---------------------------------------------------------------------------
    async def latest_notice(
        self, org_id: str, kind: str, *, for_update: bool = False
    ) -> Notice | None:
        """The organisation's current (highest) version of ``kind``."""
        query = (
            select(Notice)
            .where(Notice.org_id == org_id, Notice.kind == kind)
            .order_by(Notice.version.desc())
            .limit(1)
        )
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def notice_version(self, org_id: str, kind: str, version: int) -> Notice | None:
        query = select(Notice).where(
            Notice.org_id == org_id, Notice.kind == kind, Notice.version == version
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def current_notices(self, org_id: str) -> Sequence[Notice]:
        """The highest version of each kind the organisation published."""
        newest = (
            select(Notice.kind, func.max(Notice.version).label("version"))
            .where(Notice.org_id == org_id)
            .group_by(Notice.kind)
            .subquery()
        )
        query = (
            select(Notice)
            .join(newest, (Notice.kind == newest.c.kind) & (Notice.version == newest.c.version))
            .where(Notice.org_id == org_id)
            .order_by(Notice.kind)
        )
        return (await self.session.execute(query)).scalars().all()

    async def notice_history(self, org_id: str, kind: str) -> Sequence[Notice]:
        query = (
            select(Notice)
            .where(Notice.org_id == org_id, Notice.kind == kind)
            .order_by(Notice.version)
        )
        return (await self.session.execute(query)).scalars().all()

    # --- events ----------------------------------------------------------------------------
    async def next_seq(self, org_id: str, subject_id: str) -> int:
        query = select(func.max(ConsentEvent.seq)).where(
            ConsentEvent.org_id == org_id, ConsentEvent.subject_id == subject_id
        )
        return int((await self.session.execute(query)).scalar_one() or 0) + 1

    async def latest_event(
        self, org_id: str, subject_id: str, kind: str, purpose: str
    ) -> ConsentEvent | None:
        """The subject's newest event about ``purpose`` of notice ``kind`` (any version)."""
        query = (
            select(ConsentEvent)
            .where(
                ConsentEvent.org_id == org_id,
                ConsentEvent.subject_id == subject_id,
                ConsentEvent.notice_kind == kind,
                ConsentEvent.purpose == purpose,
            )
            .order_by(ConsentEvent.seq.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def events_of(
        self, org_id: str, subject_id: str, *, limit: int = 1000
    ) -> Sequence[ConsentEvent]:
        query = (
            select(ConsentEvent)
            .where(ConsentEvent.org_id == org_id, ConsentEvent.subject_id == subject_id)
            .order_by(ConsentEvent.seq)
            .limit(limit)
        )
        return (await self.session.execute(query)).scalars().all()

    async def event(self, org_id: str, event_id: str) -> ConsentEvent | None:
        row = await self.session.get(ConsentEvent, event_id)
        return row if row is not None and row.org_id == org_id else None

    async def subject_known(self, org_id: str, subject_id: str) -> bool:
        """Whether the organisation holds any consent event of the subject."""
        query = (
            select(ConsentEvent.id)
            .where(ConsentEvent.org_id == org_id, ConsentEvent.subject_id == subject_id)
            .limit(1)
        )
        return (await self.session.execute(query)).first() is not None

    async def given_purposes(self, org_id: str, subject_id: str) -> Sequence[tuple[str, str]]:
        """Distinct (kind, purpose) pairs the subject ever acted on in the organisation."""
        query = (
            select(ConsentEvent.notice_kind, ConsentEvent.purpose)
            .where(ConsentEvent.org_id == org_id, ConsentEvent.subject_id == subject_id)
            .distinct()
        )
        return [(k, p) for k, p in (await self.session.execute(query)).all()]

    async def delete_events_of(self, subject_ids: Sequence[str], before: datetime) -> int:
        """Delete the consent events of ``subject_ids`` made before ``before`` (retention)."""
        result = await self.session.execute(
            delete(ConsentEvent)
            .where(ConsentEvent.subject_id.in_(subject_ids), ConsentEvent.at < before)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
