"""Queries of the retention domain: anchors, runs, and what each sweeper finds due.

The "due" queries read other domains' tables (templates, capture log, consent events, subject
keys) because deciding what is due is this domain's rule; removing goes through their services
where one exists (template revocation, crypto-shredding).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.biometrics.models import FaceCapture, FaceTemplate
from anju.consent.models import ConsentEvent
from anju.privacy.inventory import RetentionAnchor
from anju.privacy.models import SubjectDataKey
from anju.retention.models import RetentionAnchorEvent, RetentionRun

A = RetentionAnchorEvent


def _anchor_due(anchor: str, cutoff: datetime) -> ColumnElement[bool]:
    """The anchor (or account closure, which ends everything) happened at or before cutoff."""
    closed = RetentionAnchor.ACCOUNT_CLOSED.value
    return (A.anchor.in_({anchor, closed})) & (A.at <= cutoff)


class RetentionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- anchors ---------------------------------------------------------------------------
    async def anchor(self, subject_id: str, anchor: str) -> RetentionAnchorEvent | None:
        return await self.session.get(RetentionAnchorEvent, (subject_id, anchor))

    async def add(self, row: RetentionAnchorEvent | RetentionRun) -> None:
        self.session.add(row)
        await self.session.flush()

    async def remove_anchor(self, row: RetentionAnchorEvent) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def anchors_of(self, subject_id: str) -> Sequence[RetentionAnchorEvent]:
        query = select(A).where(A.subject_id == subject_id).order_by(A.anchor)
        return (await self.session.execute(query)).scalars().all()

    # --- runs ------------------------------------------------------------------------------
    async def runs(self, limit: int = 20) -> Sequence[RetentionRun]:
        query = select(RetentionRun).order_by(RetentionRun.started_at.desc()).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    # --- due data --------------------------------------------------------------------------
    async def subjects_with_templates(self, anchor: str, cutoff: datetime, limit: int) -> list[str]:
        """Due subjects that still have a sealed template."""
        query = (
            select(FaceTemplate.subject_id)
            .join(A, A.subject_id == FaceTemplate.subject_id)
            .where(_anchor_due(anchor, cutoff), FaceTemplate.template.is_not(None))
            .distinct()
            .order_by(FaceTemplate.subject_id)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars().all())

    async def subjects_with_live_keys(self, anchor: str, cutoff: datetime, limit: int) -> list[str]:
        """Due subjects whose data key is not shredded yet."""
        query = (
            select(SubjectDataKey.subject_id)
            .join(A, A.subject_id == SubjectDataKey.subject_id)
            .where(_anchor_due(anchor, cutoff), SubjectDataKey.wrapped_key.is_not(None))
            .distinct()
            .order_by(SubjectDataKey.subject_id)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars().all())

    async def subjects_with_old_consents(
        self, anchor: str, cutoff: datetime, limit: int
    ) -> list[str]:
        """Due subjects that have consent events written before the cutoff."""
        query = (
            select(ConsentEvent.subject_id)
            .join(A, A.subject_id == ConsentEvent.subject_id)
            .where(_anchor_due(anchor, cutoff), ConsentEvent.at <= cutoff)
            .distinct()
            .order_by(ConsentEvent.subject_id)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars().all())

    async def delete_consents(self, subject_ids: Sequence[str], cutoff: datetime) -> int:
        result = await self.session.execute(
            delete(ConsentEvent)
            .where(ConsentEvent.subject_id.in_(subject_ids), ConsentEvent.at <= cutoff)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def old_captures(self, cutoff: datetime, limit: int) -> list[tuple[str, str | None]]:
        """(id, subject id) of capture log rows written at or before the cutoff."""
        query = (
            select(FaceCapture.id, FaceCapture.subject_id)
            .where(FaceCapture.at <= cutoff)
            .order_by(FaceCapture.at, FaceCapture.id)
            .limit(limit)
        )
        return [(i, s) for i, s in (await self.session.execute(query)).all()]

    async def delete_captures(self, ids: Sequence[str]) -> int:
        result = await self.session.execute(
            delete(FaceCapture)
            .where(FaceCapture.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def due_anchor_subjects(self, anchor: str, cutoff: datetime, limit: int) -> list[str]:
        """Subjects whose anchor (or closure) is due (for sweepers of other domains)."""
        query = (
            select(A.subject_id)
            .where(_anchor_due(anchor, cutoff))
            .distinct()
            .order_by(A.subject_id)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars().all())
