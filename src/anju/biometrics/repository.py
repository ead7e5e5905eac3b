"""Queries of the biometrics domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.biometrics.models import FaceCapture, FaceTemplate


class BiometricsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: FaceCapture | FaceTemplate) -> None:
        self.session.add(row)
        await self.session.flush()

    async def captures(self, *, limit: int = 100) -> Sequence[FaceCapture]:
        """The newest capture log entries first."""
        query = select(FaceCapture).order_by(FaceCapture.at.desc(), FaceCapture.id).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    async def active_template(self, subject_id: str) -> FaceTemplate | None:
        """The subject's template in force (newest version, not revoked)."""
        query = (
            select(FaceTemplate)
            .where(FaceTemplate.subject_id == subject_id, FaceTemplate.revoked_at.is_(None))
            .order_by(FaceTemplate.version.desc())
            .limit(1)
            .with_for_update()
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def latest_version(self, subject_id: str) -> int:
        """The highest template version the subject ever had (0 if none)."""
        query = select(func.max(FaceTemplate.version)).where(FaceTemplate.subject_id == subject_id)
        value = (await self.session.execute(query)).scalar_one()
        return int(value or 0)

    async def templates_of(self, subject_id: str) -> Sequence[FaceTemplate]:
        query = (
            select(FaceTemplate)
            .where(FaceTemplate.subject_id == subject_id)
            .order_by(FaceTemplate.version)
        )
        return (await self.session.execute(query)).scalars().all()
