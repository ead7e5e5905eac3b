"""The audit log: append entries to the SM3 Merkle tree and sign checkpoints with SM2.

Entries commit in the caller's transaction, so an action and its audit record succeed or fail
together. Appends take the tree lock first (see :func:`repository.lock_tree`), read the tree
head, and write the entry plus every interior node it completes: proofs are then look-ups.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from anju.audit import head, repository
from anju.audit.encoding import DetailValue, canonical_json, entry_leaf_hash
from anju.audit.models import AuditCheckpoint, AuditEntry
from anju.audit.sequencer import sequencer_for
from anju.audit.verify import (
    ConsistencyProof,
    InclusionProof,
    VerifyReport,
    consistency_proof,
    inclusion_proof,
    verify_log,
)
from anju.db import after_commit, before_commit
from anju.errors import InvalidInput
from anju.kit import merkle
from anju.kit.checkpoint import Checkpoint, sign_checkpoint
from anju.kit.crypto import SM2PublicKey
from anju.kit.redaction import redact_value

if TYPE_CHECKING:
    from anju.platform import Platform

OUTCOMES = ("success", "failure", "denied")
AUDIT_SIGNER = "audit"
_ACTION = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_-]+)*$")
_DEFERRED = "anju.audit.deferred"  # Session.info key: entries to queue before the commit
QUEUE_ROUND = 500  # queued entries a sequencer round appends per transaction


@dataclass(frozen=True)
class NewEntry:
    """An entry to append (see :meth:`AuditLog.record` for the fields)."""

    action: str
    actor: str
    org_id: str | None = None
    target: str | None = None
    outcome: str = "success"
    details: Mapping[str, DetailValue] | None = field(default=None)


@dataclass(frozen=True)
class SignedCheckpoint:
    """A stored checkpoint: tree size, root hash and the signed note text."""

    size: int
    root: bytes
    note: str

    @classmethod
    def of(cls, row: AuditCheckpoint) -> SignedCheckpoint:
        return cls(int(row.tree_size), bytes(row.root), row.note)


def validate(entry: NewEntry) -> str:
    """Check an entry's fields; return its details as canonical JSON."""
    if not _ACTION.match(entry.action) or len(entry.action) > 100:
        raise InvalidInput(f"审计动作名无效 / invalid audit action name {entry.action!r}")
    if not entry.actor or len(entry.actor) > 200:
        raise InvalidInput("审计主体无效 / audit actor must be 1–200 characters")
    if entry.target is not None and len(entry.target) > 200:
        raise InvalidInput("审计对象过长 / audit target must be at most 200 characters")
    if entry.org_id is not None and not 0 < len(entry.org_id) <= 36:
        raise InvalidInput("机构标识无效 / audit org_id must be 1–36 characters")
    if entry.outcome not in OUTCOMES:
        raise InvalidInput(f"审计结果无效 / audit outcome must be one of {', '.join(OUTCOMES)}")
    for key, value in (entry.details or {}).items():
        if not isinstance(key, str) or not (value is None or isinstance(value, str | int | bool)):
            raise InvalidInput(
                "审计详情只能是字符串、整数、布尔或空 / audit details take str, int, bool or None"
            )
    if entry.details is None:
        return canonical_json(None)
    # Callers must never put PI in details; as a second line of defence anything that looks
    # like an ID number, phone, card or e-mail is masked before it becomes permanent.
    return canonical_json({key: redact_value(value) for key, value in entry.details.items()})


def _queue_row(entry: NewEntry, details: str) -> dict[str, Any]:
    return {
        "org_id": entry.org_id,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "outcome": entry.outcome,
        "details": details,
    }


def _refuse_unappended(session: Session) -> None:
    if session.info.get(_DEFERRED):
        raise RuntimeError("audit entries are waiting: commit through Database.transaction")


class AuditLog:
    """Append-only, tamper-evident audit log of one platform."""

    def __init__(self, platform: Platform) -> None:
        self._db = platform.db
        self._settings = platform.settings
        self._clock = platform.clock
        self._keys = platform.keys

    @property
    def origin(self) -> str:
        """The checkpoint origin line (also the signing key's name in notes)."""
        return self._settings.audit_origin

    def public_key(self) -> SM2PublicKey:
        """The SM2 public key that verifies checkpoints."""
        return self._keys.signer(AUDIT_SIGNER).public_key

    async def record(
        self,
        session: AsyncSession,
        *,
        action: str,
        actor: str,
        org_id: str | None = None,
        target: str | None = None,
        outcome: str = "success",
        details: Mapping[str, DetailValue] | None = None,
    ) -> int:
        """Append one entry in the caller's transaction; return its leaf index."""
        entry = NewEntry(action, actor, org_id, target, outcome, details)
        first, _ = await self.record_many(session, [entry])
        return first

    async def record_at_commit(self, session: AsyncSession, entries: Sequence[NewEntry]) -> None:
        """Record ``entries`` with the caller's transaction, never waiting for the tree lock.

        They are checked now and kept with every other entry recorded this way in the
        transaction. Right before the commit they are appended as one batch if the tree lock is
        free at that moment — held from there to the commit, as :meth:`record` holds it — and
        otherwise queued (one INSERT, no lock) for the sequencer (:mod:`anju.audit.sequencer`),
        which :meth:`anju.db.Database.transaction` then waits for after the commit: either way
        a request that returned has its entries in the tree, and a busy log costs waiting
        requests one shared append instead of one lock hand-over each. Inside a savepoint
        they are queued at once (a savepoint may roll back alone). They commit or roll back
        with the transaction, exactly like :meth:`record`. A commit that bypasses
        :meth:`anju.db.Database.transaction` with entries still waiting is refused."""
        checked = [(entry, validate(entry)) for entry in entries]
        if session.in_nested_transaction():
            await self._queue(session, checked)
            return
        waiting: list[tuple[NewEntry, str]] | None = session.info.get(_DEFERRED)
        if waiting is None:
            waiting = session.info[_DEFERRED] = []
            event.listen(session.sync_session, "before_commit", _refuse_unappended)
            before_commit(session, _DEFERRED, self._append_or_queue_deferred)
        waiting.extend(checked)

    async def _append_or_queue_deferred(self, session: AsyncSession) -> None:
        waiting: list[tuple[NewEntry, str]] | None = session.info.get(_DEFERRED)
        if not waiting:
            return
        checked = list(waiting)
        waiting.clear()
        got = await repository.try_lock_and_head(session)
        counts = sequencer_for(self._db)
        if got is None:
            counts.queued_at_commit += 1
            await self._queue(session, checked)
        else:
            counts.appended_at_commit += 1
            await self._append(session, *got, checked)

    async def _queue(self, session: AsyncSession, checked: Sequence[tuple[NewEntry, str]]) -> None:
        await repository.queue(session, [_queue_row(e, d) for e, d in checked])
        after_commit(session, _DEFERRED, self.append_queued)

    async def append_deferred(self, session: AsyncSession) -> None:
        """Append the entries :meth:`record_at_commit` is holding for this transaction to the
        tree now, under the tree lock (before reading the log in the same transaction)."""
        waiting: list[tuple[NewEntry, str]] | None = session.info.get(_DEFERRED)
        if waiting:
            checked = list(waiting)
            waiting.clear()
            await self._append(session, *await repository.lock_and_head(session), checked)

    async def append_queued(self) -> None:
        """Append every committed, queued entry to the tree — now, or by the round already
        under way in this process plus the next (see :mod:`anju.audit.sequencer`)."""
        await sequencer_for(self._db).drain(self._append_queued_rounds)

    async def _append_queued_rounds(self) -> None:
        while True:
            async with self._db.transaction() as session:
                taken = await self.append_queued_in(session, QUEUE_ROUND)
            if taken < QUEUE_ROUND:
                return

    async def append_queued_in(self, session: AsyncSession, limit: int = QUEUE_ROUND) -> int:
        """In ``session``'s transaction: take the tree lock and append up to ``limit`` of the
        oldest queued entries; how many."""
        size, last_leaf, signed = await repository.lock_and_head(session)
        taken = await repository.take_queued(session, limit)
        if taken:
            checked = [
                (NewEntry(r.action, r.actor, r.org_id, r.target, r.outcome), r.details)
                for r in taken
            ]
            await self._append(session, size, last_leaf, signed, checked)
        return len(taken)

    async def record_many(
        self, session: AsyncSession, entries: Sequence[NewEntry]
    ) -> tuple[int, int]:
        """Append entries in one go; return the leaf index range ``[first, end)``."""
        checked = [(entry, validate(entry)) for entry in entries]
        size, last_leaf, signed = await repository.lock_and_head(session)
        if not entries:
            return size, size
        end = await self._append(session, size, last_leaf, signed, checked)
        return size, end

    async def _append(
        self,
        session: AsyncSession,
        size: int,
        last_leaf: bytes | None,
        signed: int,
        checked: Sequence[tuple[NewEntry, str]],
    ) -> int:
        """Append checked entries (entry, details JSON) to the tree whose head was read under
        the lock; the new size."""
        frontier = head.cached_frontier(session, size, last_leaf)
        if frontier is None:
            frontier = await repository.load_frontier(session, size)
        now = self._clock.now()
        rows: list[dict[str, Any]] = []
        nodes: list[merkle.Node] = []
        for offset, (entry, detail) in enumerate(checked):
            h = entry_leaf_hash(
                index=size + offset,
                recorded_at=now,
                org_id=entry.org_id,
                actor=entry.actor,
                action=entry.action,
                target=entry.target,
                outcome=entry.outcome,
                details=detail,
            )
            rows.append(
                {
                    "leaf_index": size + offset,
                    "recorded_at": now,
                    "org_id": entry.org_id,
                    "actor": entry.actor,
                    "action": entry.action,
                    "target": entry.target,
                    "outcome": entry.outcome,
                    "details": detail,
                    "leaf_hash": h,
                }
            )
            nodes.extend(frontier.append(h))
        await repository.insert_appended(session, rows, nodes)
        if frontier.size - signed >= self._settings.audit_checkpoint_every:
            await self._sign(session, frontier)
        head.remember_after_commit(session, frontier, rows[-1]["leaf_hash"])
        return frontier.size

    async def checkpoint(self, session: AsyncSession) -> SignedCheckpoint:
        """Sign a checkpoint of the current tree unless the latest one already covers it."""
        await self.append_deferred(session)
        await self.append_queued_in(session)  # takes the tree lock; leftovers of any process
        size = await repository.tree_size(session)
        latest = await repository.latest_checkpoint(session)
        if latest is not None and int(latest.tree_size) == size:
            return SignedCheckpoint.of(latest)
        frontier = await repository.load_frontier(session, size)
        return await self._sign(session, frontier)

    async def checkpoint_if_due(self, session: AsyncSession) -> SignedCheckpoint | None:
        """Sign when entries have waited ``audit_checkpoint_seconds`` unsigned; else None.
        Appends queued entries first (the periodic job thereby sweeps up entries a process
        committed and did not append before it stopped)."""
        await self.append_deferred(session)
        await self.append_queued_in(session)  # takes the tree lock; leftovers of any process
        size = await repository.tree_size(session)
        latest = await repository.latest_checkpoint(session)
        signed = 0 if latest is None else int(latest.tree_size)
        if size <= signed:
            return None
        if latest is not None:
            since = latest.signed_at
        else:
            first = await repository.entry_at(session, 0)
            if first is None:
                return None
            since = first.recorded_at
        waited = (self._clock.now() - since).total_seconds()
        if waited < self._settings.audit_checkpoint_seconds:
            return None
        frontier = await repository.load_frontier(session, size)
        return await self._sign(session, frontier)

    async def latest_checkpoint(self, session: AsyncSession) -> SignedCheckpoint | None:
        """The most recent signed checkpoint, if any."""
        await self.append_deferred(session)
        row = await repository.latest_checkpoint(session)
        return None if row is None else SignedCheckpoint.of(row)

    async def verify(
        self, session: AsyncSession, public_key: SM2PublicKey | None = None
    ) -> VerifyReport:
        """Check the whole log (with this platform's public key unless another is given)."""
        await self.append_deferred(session)
        key = public_key or self.public_key()
        return await verify_log(session, origin=self.origin, public_key=key)

    async def inclusion_proof(
        self, session: AsyncSession, index: int, size: int | None = None
    ) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of ``size`` (default: latest checkpoint)."""
        await self.append_deferred(session)
        if size is None:
            latest = await repository.latest_checkpoint(session)
            size = int(latest.tree_size) if latest is not None and latest.tree_size > index else 0
            if size == 0:
                size = await repository.tree_size(session)
        return await inclusion_proof(session, index, size)

    async def consistency_proof(
        self, session: AsyncSession, old_size: int, new_size: int
    ) -> ConsistencyProof:
        """Proof that the tree of ``new_size`` extends the tree of ``old_size``."""
        await self.append_deferred(session)
        return await consistency_proof(session, old_size, new_size)

    async def tail(
        self, session: AsyncSession, count: int, org_id: str | None = None
    ) -> list[AuditEntry]:
        """The newest ``count`` entries, newest first."""
        await self.append_deferred(session)
        return await repository.tail(session, count, org_id)

    async def _sign(self, session: AsyncSession, frontier: merkle.Frontier) -> SignedCheckpoint:
        root = frontier.root()
        note = sign_checkpoint(
            Checkpoint(self.origin, frontier.size, root),
            self.origin,
            self._keys.signer(AUDIT_SIGNER),
        )
        session.add(
            AuditCheckpoint(
                tree_size=frontier.size,
                root=root,
                note=note,
                signed_at=self._clock.now(),
                frontier=b"".join(frontier.hashes()),
            )
        )
        await session.flush()
        return SignedCheckpoint(frontier.size, root, note)
