"""Retention rules: anchors (check-out, closure, verification), account closure, and one sweep
batch with the audit entry that proves what it removed, when and why. The caller commits."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import AuditLog
from anju.consent.rules import check_subject_id
from anju.consent.service import ConsentService
from anju.errors import InvalidInput, NotFound
from anju.kit.crypto import random_bytes
from anju.platform import Platform
from anju.privacy.inventory import RetentionAnchor
from anju.retention.models import RetentionAnchorEvent, RetentionRun
from anju.retention.policies import RetentionPolicy, resolve_policies
from anju.retention.repository import RetentionRepository
from anju.retention.sweepers import SweepBatch, Sweeper, SweepJob

#: Subject ids listed per audit entry: a batch larger than this is audited in several entries.
SUBJECTS_PER_ENTRY = 100


@dataclass
class SweepReport:
    """What a whole sweep removed, per kind (counts only)."""

    run_id: str
    started_at: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def removed(self) -> int:
        return sum(self.counts.values())


def parse_anchor(value: str) -> RetentionAnchor:
    try:
        return RetentionAnchor(value)
    except ValueError:
        raise InvalidInput(
            f"未知保存期起算事件 / unknown retention anchor {value[:40]!r}",
            details={"known": [a.value for a in RetentionAnchor]},
        ) from None


class RetentionService:
    """Anchors, closure and sweep batches in one session."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self._platform = platform
        self._session = session
        self._repo = RetentionRepository(session)
        self._audit = AuditLog(platform)

    def policies(self) -> dict[str, RetentionPolicy]:
        """The policies in force (defaults with the settings' overrides)."""
        return resolve_policies(self._platform.settings.retention_days)

    # --- anchors ---------------------------------------------------------------------------
    async def mark_anchor(
        self,
        actor: str,
        subject_id: str,
        anchor: str,
        *,
        org_id: str | None = None,
        at: datetime | None = None,
    ) -> RetentionAnchorEvent:
        """Record that ``anchor`` happened for the subject (the latest occurrence counts)."""
        check_subject_id(subject_id)
        which = parse_anchor(anchor)
        when = at or self._platform.clock.now()
        row = await self._repo.anchor(subject_id, which.value)
        if row is None:
            row = RetentionAnchorEvent(
                subject_id=subject_id, anchor=which.value, org_id=org_id, at=when
            )
            await self._repo.add(row)
        else:
            row.at, row.org_id = when, org_id
            await self._session.flush()
        await self._audit.record(
            self._session,
            action="retention.anchor_marked",
            actor=actor,
            org_id=org_id,
            target=f"subject:{subject_id}",
            details={"anchor": which.value, "at": when.isoformat()},
        )
        return row

    async def clear_anchor(self, actor: str, subject_id: str, anchor: str) -> bool:
        """Forget an anchor (a returning guest checks in again: check-out no longer counts)."""
        which = parse_anchor(anchor)
        if which is RetentionAnchor.ACCOUNT_CLOSED:
            raise InvalidInput("账户注销不可撤销 / an account closure cannot be undone")
        row = await self._repo.anchor(check_subject_id(subject_id), which.value)
        if row is None:
            return False
        await self._repo.remove_anchor(row)
        await self._audit.record(
            self._session,
            action="retention.anchor_cleared",
            actor=actor,
            target=f"subject:{subject_id}",
            details={"anchor": which.value},
        )
        return True

    async def anchors(self, subject_id: str) -> list[RetentionAnchorEvent]:
        return list(await self._repo.anchors_of(check_subject_id(subject_id)))

    async def close_account(self, org_id: str, actor: str, subject_id: str, *, channel: str) -> int:
        """Account closure: every consent withdrawn (hooks run), and everything anchored on
        closure counts from now. Returns how many consents were withdrawn."""
        consents = ConsentService(self._platform, self._session)
        if not await consents.subject_known(org_id, subject_id):
            raise NotFound("本机构没有该主体 / no such subject in this organisation")
        withdrawn = await consents.withdraw_all(org_id, actor, subject_id, channel)
        await self.mark_anchor(
            actor, subject_id, RetentionAnchor.ACCOUNT_CLOSED.value, org_id=org_id
        )
        await self._audit.record(
            self._session,
            action="retention.account_closed",
            actor=actor,
            org_id=org_id,
            target=f"subject:{subject_id}",
            details={"consents_withdrawn": len(withdrawn), "channel": channel},
        )
        return len(withdrawn)

    # --- the sweep -------------------------------------------------------------------------
    async def sweep_batch(
        self,
        sweeper: Sweeper,
        policy: RetentionPolicy,
        *,
        now: datetime,
        actor: str,
        run_id: str,
        limit: int,
    ) -> SweepBatch:
        """One batch of one sweeper, audited as ``retention.swept`` (what, when, why, whose)."""
        job = SweepJob(self._platform, self._session, policy, now, actor)
        batch = await sweeper.sweep_batch(job, limit)
        if batch.removed or batch.subjects:
            chunks = [
                batch.subjects[i : i + SUBJECTS_PER_ENTRY]
                for i in range(0, len(batch.subjects), SUBJECTS_PER_ENTRY)
            ] or [[]]
            for number, chunk in enumerate(chunks):
                await self._audit.record(
                    self._session,
                    action="retention.swept",
                    actor=actor,
                    target=f"retention:{policy.kind}",
                    details={
                        "run": run_id,
                        "kind": policy.kind,
                        "action": policy.action.value,
                        "reason": "retention_period_passed",
                        "anchor": policy.anchor,
                        "days": policy.days,
                        "cutoff": job.cutoff.isoformat(),
                        "removed": batch.removed if number == 0 else 0,
                        "subject_ids": ",".join(chunk),
                    },
                )
        return batch

    async def finish_run(
        self, report: SweepReport, actor: str, finished_at: datetime
    ) -> RetentionRun:
        """Record the run and its ``retention.sweep_run`` audit entry (counts per kind)."""
        counts = json.dumps(report.counts, sort_keys=True, separators=(",", ":"))
        row = RetentionRun(
            id=report.run_id,
            started_at=report.started_at,
            finished_at=finished_at,
            actor=actor,
            removed=report.removed,
            counts=counts,
        )
        await self._repo.add(row)
        await self._audit.record(
            self._session,
            action="retention.sweep_run",
            actor=actor,
            target=f"retention_run:{report.run_id}",
            details={"removed": report.removed, "counts": counts},
        )
        return row

    async def runs(self, limit: int = 20) -> list[RetentionRun]:
        return list(await self._repo.runs(limit))


def new_run(now: datetime) -> SweepReport:
    return SweepReport(random_bytes(16).hex(), now)
