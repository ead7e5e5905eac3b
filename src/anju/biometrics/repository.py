"""Queries of the biometrics domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from anju.biometrics.models import FaceCapture, FaceTemplate, LivenessChallenge


class BiometricsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: FaceCapture | FaceTemplate | LivenessChallenge) -> None:
        self.session.add(row)
        await self.session.flush()

    async def capture(self, capture_id: str) -> FaceCapture | None:
        return await self.session.get(FaceCapture, capture_id)

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

    # --- liveness challenges ---------------------------------------------------------------
    async def open_challenges(self, actor: str, now: datetime) -> int:
        """How many unused, unexpired challenges ``actor`` holds."""
        query = select(func.count()).where(
            LivenessChallenge.actor == actor,
            LivenessChallenge.used_at.is_(None),
            LivenessChallenge.expires_at > now,
        )
        return int((await self.session.execute(query)).scalar_one())

    async def purge_challenges(self, now: datetime) -> None:
        """Forget expired challenges (used or not): they can never be claimed again."""
        await self.session.execute(
            delete(LivenessChallenge).where(LivenessChallenge.expires_at <= now)
        )

    async def claim_challenge(
        self, challenge_id: str, actor: str, now: datetime
    ) -> LivenessChallenge | None:
        """Mark ``actor``'s challenge used if it was not; the row when this call was the one
        that did. One conditional UPDATE: of two concurrent claims exactly one changes the row,
        and nobody else's claim can use up (or find out about) another actor's challenge.
        """
        result = await self.session.execute(
            update(LivenessChallenge)
            .where(
                LivenessChallenge.id == challenge_id,
                LivenessChallenge.actor == actor,
                LivenessChallenge.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            return None
        return await self.session.get(LivenessChallenge, challenge_id, populate_existing=True)

    async def challenge_of(self, challenge_id: str, actor: str) -> LivenessChallenge | None:
        row = await self.session.get(LivenessChallenge, challenge_id)
        return row if row is not None and row.actor == actor else None
