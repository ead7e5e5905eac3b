"""Sweepers: one per kind of data, each removing one batch of what its policy says is due.

A sweeper answers one call, ``sweep_batch``, inside the caller's transaction, and reports what
it removed (a count and the subject ids, never values). Adding a kind of data (people, stays,
unlock records) is one ``registry.register(...)`` line in :func:`standard_sweepers`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from anju.biometrics.service import BiometricService, Operator
from anju.platform import Platform
from anju.privacy.vault import PIVault
from anju.retention.policies import (
    CAPTURE_LOG,
    CONSENT_RECORD,
    SUBJECT_DATA_KEY,
    UNLOCK_RECORD,
    RetentionPolicy,
)
from anju.retention.repository import RetentionRepository
from anju.unlocks.repository import UnlocksRepository
from anju.webhooks.repository import WebhooksRepository

SWEEP_DEVICE = "retention-sweep"


@dataclass(frozen=True)
class SweepJob:
    """What a sweeper gets: the session, the policy in force, and when "now" is."""

    platform: Platform
    session: AsyncSession
    policy: RetentionPolicy
    now: datetime
    actor: str

    @property
    def cutoff(self) -> datetime:
        return self.policy.cutoff(self.now)

    @property
    def repo(self) -> RetentionRepository:
        return RetentionRepository(self.session)


@dataclass
class SweepBatch:
    """What one batch removed: how many items and whose (subject ids, never values)."""

    removed: int = 0
    subjects: list[str] = field(default_factory=list)
    more: bool = False  # a full batch: call again


class Sweeper(Protocol):
    """Removes one batch of due data of one kind."""

    async def sweep_batch(self, job: SweepJob, limit: int) -> SweepBatch: ...


class SweeperRegistry:
    """Sweepers by the kind of data (policy) they serve, in registration order."""

    def __init__(self) -> None:
        self._sweepers: dict[str, Sweeper] = {}

    def register(self, kind: str, sweeper: Sweeper) -> None:
        """Sweep ``kind`` with ``sweeper`` (one per kind)."""
        if kind in self._sweepers:
            raise ValueError(f"a sweeper for {kind!r} is already registered")
        self._sweepers[kind] = sweeper

    def items(self) -> list[tuple[str, Sweeper]]:
        return list(self._sweepers.items())

    def kinds(self) -> list[str]:
        return list(self._sweepers)


class TemplateSweeper:
    """Face templates of subjects whose period passed: revoked (the sealed bits deleted)."""

    async def sweep_batch(self, job: SweepJob, limit: int) -> SweepBatch:
        subjects = await job.repo.subjects_with_templates(job.policy.anchor, job.cutoff, limit)
        faces = BiometricService(job.platform, job.session)
        operator = Operator(job.actor[:128], SWEEP_DEVICE)
        removed = 0
        for subject_id in subjects:
            removed += await faces.revoke(subject_id, operator)
        return SweepBatch(removed, subjects, len(subjects) == limit)


class CaptureLogSweeper:
    """Capture log rows older than the period: deleted."""

    async def sweep_batch(self, job: SweepJob, limit: int) -> SweepBatch:
        rows = await job.repo.old_captures(job.cutoff, limit)
        removed = await job.repo.delete_captures([row_id for row_id, _ in rows]) if rows else 0
        subjects = sorted({s for _, s in rows if s is not None})
        return SweepBatch(removed, subjects, len(rows) == limit)


class ConsentRecordSweeper:
    """Consent events kept past their proof period: deleted."""

    async def sweep_batch(self, job: SweepJob, limit: int) -> SweepBatch:
        subjects = await job.repo.subjects_with_old_consents(job.policy.anchor, job.cutoff, limit)
        removed = await job.repo.delete_consents(subjects, job.cutoff) if subjects else 0
        return SweepBatch(removed, subjects, len(subjects) == limit)


class SubjectKeySweeper:
    """Subjects whose period passed: their data keys shredded (everything sealed unreadable)."""

    async def sweep_batch(self, job: SweepJob, limit: int) -> SweepBatch:
        subjects = await job.repo.subjects_with_live_keys(job.policy.anchor, job.cutoff, limit)
        vault = PIVault(job.platform)
        removed = 0
        for subject_id in subjects:
            removed += await vault.shred_subject(job.session, subject_id, job.actor)
        return SweepBatch(removed, subjects, len(subjects) == limit)


#: Deletes copies of unlock records received before a cutoff; the number deleted.
CopyPurge = Callable[[AsyncSession, datetime], Awaitable[int]]


class UnlockRecordSweeper:
    """Unlock records received before the period: deleted — and, once the records are done,
    the copies of them kept elsewhere: finished webhook deliveries that carried them, and what
    ``copies`` deletes (the gateway's raw ``access.unlock`` events, wired in by the edge that
    owns them)."""

    def __init__(self, copies: Sequence[CopyPurge] = ()) -> None:
        self._copies = tuple(copies)

    async def sweep_batch(self, job: SweepJob, limit: int) -> SweepBatch:
        repo = UnlocksRepository(job.session)
        rows = await repo.received_before(job.cutoff, limit)
        removed = await repo.delete_records([row_id for row_id, _ in rows]) if rows else 0
        more = len(rows) == limit
        if not more:
            removed += await WebhooksRepository(job.session).purge_finished(job.cutoff)
            for purge in self._copies:
                removed += await purge(job.session, job.cutoff)
        subjects = sorted({s for _, s in rows if s is not None})
        return SweepBatch(removed, subjects, more)


def standard_sweepers(unlock_copies: Sequence[CopyPurge] = ()) -> SweeperRegistry:
    """The sweepers of the data anju holds (a new kind of data registers its sweeper here:
    one line each); ``unlock_copies`` come from the edges (see ``anju.background``)."""
    registry = SweeperRegistry()
    registry.register("biometric_template", TemplateSweeper())
    registry.register(CAPTURE_LOG, CaptureLogSweeper())
    registry.register(CONSENT_RECORD, ConsentRecordSweeper())
    registry.register(UNLOCK_RECORD, UnlockRecordSweeper(unlock_copies))
    registry.register(SUBJECT_DATA_KEY, SubjectKeySweeper())  # last: after the kinds it seals
    return registry
