"""Verify the audit log from its rows and signed checkpoints; produce proofs an auditor can check.

The verifier needs only the database and the audit *public* key. It recomputes every leaf hash
from the row contents (the leaf includes the row's index), checks indices run 0, 1, 2, …,
rebuilds the Merkle tree, compares every interior node the log stores, and checks each
checkpoint's SM2 signature and that its signed root is the root of the rebuilt tree at that size.

Limits: rows and nodes are unkeyed hashes, so someone with write access can rewrite entries
*after the last signed checkpoint* consistently and nothing here can tell. Everything up to a
checkpoint is bound by its signature. Deleting the newest checkpoints together with their
entries is only visible to someone who kept an earlier note (compare with ``anju audit
checkpoint`` output saved elsewhere, e.g. by a witness).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import repository
from anju.audit.encoding import entry_leaf_hash
from anju.audit.models import AuditCheckpoint, AuditEntry
from anju.errors import IntegrityError, InvalidInput, NotFound
from anju.kit import merkle
from anju.kit.checkpoint import verify_note
from anju.kit.crypto import SM2PublicKey

ORIGIN_SEARCH = 100_000  # how far from a bad row to look for where its content was recorded
BATCH = 5000
# among problems at the same entry, report the most telling first
_PRIORITY = {"checkpoint_root": 1, "node": 2}


@dataclass(frozen=True)
class Problem:
    """One finding. ``index`` is the first entry affected (None when no entry is implicated)."""

    kind: str  # altered | missing | reordered | inserted | node | checkpoint_root | ...
    index: int | None
    message: str
    entries: tuple[int, int] | None = None  # the narrowest range [a, b) known to hold the fault


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_log`."""

    entries: int = 0
    checkpoints: int = 0
    covered: int = 0  # entries covered by a good signed checkpoint
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def uncovered(self) -> int:
        """Entries not yet covered by a signed checkpoint (information, not a failure)."""
        return max(self.entries - self.covered, 0)

    @property
    def first_problem(self) -> Problem | None:
        """The problem at the lowest entry index."""
        if not self.problems:
            return None
        return min(self.problems, key=_order)

    def summary(self) -> str:
        """One line for people."""
        if self.ok:
            tail = (
                f"; {self.uncovered} newest entries not yet covered by a signed checkpoint"
                if self.uncovered
                else ""
            )
            return (
                f"审计日志完整 / audit log intact: {self.entries} entries, "
                f"{self.checkpoints} signed checkpoints verified{tail}"
            )
        first = self.first_problem
        assert first is not None
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"审计日志被篡改 / audit log tampered: {first.message}{more}"


def _order(p: Problem) -> tuple[int, int]:
    """Sort key: a range finding (node, checkpoint root) counts at its last entry, so a named
    entry inside the range is reported before the range that merely contains it."""
    if p.kind in _PRIORITY and p.entries is not None:
        return p.entries[1] - 1, _PRIORITY[p.kind]
    return (p.index if p.index is not None else 1 << 63), 0


def _row_leaf(row: Row[Any] | AuditEntry, index: int) -> bytes:
    return entry_leaf_hash(
        index=index,
        recorded_at=row.recorded_at,
        org_id=row.org_id,
        actor=row.actor,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        details=row.details,
    )


@dataclass
class _SignedHead:
    size: int
    root: bytes
    frontier: list[bytes] | None  # authenticated: folds to the signed root


def _check_checkpoints(
    rows: list[AuditCheckpoint], origin: str, public_key: SM2PublicKey, report: VerifyReport
) -> list[_SignedHead]:
    heads: list[_SignedHead] = []
    for row in rows:
        size = int(row.tree_size)
        try:
            signed = verify_note(row.note, origin, public_key)
        except IntegrityError as exc:
            report.problems.append(
                Problem(
                    "checkpoint_signature",
                    None,
                    f"checkpoint at size {size}: bad signature ({exc.message})",
                )
            )
            continue
        if signed.origin != origin or signed.size != size or signed.root != bytes(row.root):
            report.problems.append(
                Problem(
                    "checkpoint_mismatch",
                    None,
                    f"checkpoint at size {size}: stored size/root differ from its signed note "
                    f"(signed size {signed.size})",
                )
            )
            continue
        blob = bytes(row.frontier)
        hashes = [blob[i : i + 32] for i in range(0, len(blob), 32)]
        authentic = (
            len(hashes) == len(merkle.frontier_positions(size))
            and merkle.fold(hashes) == signed.root
        )
        heads.append(_SignedHead(size, signed.root, hashes if authentic else None))
    report.checkpoints = len(heads)
    return heads


async def verify_log(
    session: AsyncSession, *, origin: str, public_key: SM2PublicKey
) -> VerifyReport:
    """Check every entry, stored node and checkpoint; see the module docstring."""
    report = VerifyReport()
    heads = _check_checkpoints(
        await repository.all_checkpoints(session), origin, public_key, report
    )
    by_size = {h.size: h for h in heads}
    frontier = merkle.Frontier()
    good_size = 0  # largest checkpoint size whose root matched the rebuilt tree
    first_bad: int | None = None  # first index whose row disagrees with itself
    gap: tuple[int, int] | None = None
    pending_nodes: dict[tuple[int, int], bytes] = {}
    chunk_start = 0
    node_problem = False

    async def check_nodes(start: int, end: int) -> None:
        nonlocal node_problem
        if node_problem or start >= end:
            pending_nodes.clear()
            return
        stored = await repository.nodes_completed_by(session, start, end)
        for (level, ix), h in sorted(pending_nodes.items()):
            if stored.get((level, ix)) != h:
                lo, hi = ix << level, (ix + 1) << level
                what = "missing" if (level, ix) not in stored else "wrong"
                report.problems.append(
                    Problem(
                        "node",
                        lo,
                        f"stored Merkle node (level {level}, index {ix}) over entries "
                        f"[{lo}, {hi}) is {what}",
                        (lo, hi),
                    )
                )
                node_problem = True
                break
        pending_nodes.clear()

    async for row in repository.iter_entries(session, BATCH):
        index = int(row.leaf_index)
        expected = frontier.size
        if first_bad is None and index != expected:
            first_bad, gap = expected, (expected, index)
        h = _row_leaf(row, index)
        if first_bad is None and h != bytes(row.leaf_hash):
            first_bad = index
        for node in frontier.append(h):
            pending_nodes[(node.level, node.index)] = node.hash
        head = by_size.get(frontier.size)
        if head is not None:
            if head.root == frontier.root():
                good_size = frontier.size
            else:
                report.problems.append(
                    await _root_mismatch(session, head, good_size, frontier.copy())
                )
        if frontier.size - chunk_start >= BATCH:
            await check_nodes(chunk_start, frontier.size)
            chunk_start = frontier.size
    await check_nodes(chunk_start, frontier.size)
    report.entries = frontier.size

    for head in heads:
        if head.size > frontier.size:
            report.problems.append(
                Problem(
                    "missing",
                    frontier.size,
                    f"checkpoint signed at size {head.size} but only {frontier.size} entries "
                    f"remain: entries [{frontier.size}, {head.size}) missing (deleted)",
                    (frontier.size, head.size),
                )
            )
    if first_bad is not None:
        report.problems.append(await _classify(session, first_bad, gap))
    report.covered = good_size
    return report


async def _root_mismatch(
    session: AsyncSession, head: _SignedHead, good_size: int, rebuilt: merkle.Frontier
) -> Problem:
    """Name the narrowest entry range where the rebuilt tree departs from a signed root."""
    lo, hi = good_size, head.size
    how = f"after the last matching checkpoint (size {good_size})" if good_size else ""
    if head.frontier is not None:
        # The stored frontier folds to the signed root, so each of its hashes is authentic.
        for (level, ix), signed_h, mine in zip(
            merkle.frontier_positions(head.size), head.frontier, rebuilt.hashes(), strict=True
        ):
            if signed_h != mine:
                lo, hi = await _descend(session, level, ix, signed_h)
                lo, hi = max(lo, good_size), min(hi, head.size)
                break
    where = f"entry {lo}" if hi - lo == 1 else f"entries [{lo}, {hi})"
    return Problem(
        "checkpoint_root",
        lo,
        f"checkpoint at size {head.size}: signed root does not match the entries; "
        f"first difference in {where} {how}".rstrip(),
        (lo, hi),
    )


async def _descend(session: AsyncSession, level: int, ix: int, authentic: bytes) -> tuple[int, int]:
    """Walk down from an authenticated subtree hash while stored children still authenticate."""
    while level > 0:
        left, right = (level - 1, 2 * ix), (level - 1, 2 * ix + 1)
        stored = await repository.perfect_hashes(session, [left, right])
        if left not in stored or right not in stored:
            break
        if merkle.node_hash(stored[left], stored[right]) != authentic:
            break  # stored nodes were rewritten too: cannot narrow further
        lo_l, hi_l = left[1] << left[0], (left[1] + 1) << left[0]
        mine_left = merkle.root_of(await _recomputed_leaves(session, lo_l, hi_l))
        level, ix, authentic = (
            (left[0], left[1], stored[left])
            if mine_left != stored[left]
            else (right[0], right[1], stored[right])
        )
    return ix << level, (ix + 1) << level


async def _recomputed_leaves(session: AsyncSession, start: int, end: int) -> list[bytes]:
    rows = await session.execute(
        select(AuditEntry.__table__)
        .where(AuditEntry.leaf_index >= start, AuditEntry.leaf_index < end)
        .order_by(AuditEntry.leaf_index)
    )
    return [_row_leaf(r, int(r.leaf_index)) for r in rows]


async def _origin(session: AsyncSession, row: Row[Any], limit: int) -> int | None:
    """The index this row's content was recorded at, if it can be found near ``row``."""
    here = int(row.leaf_index)
    lo, hi = max(0, here - ORIGIN_SEARCH), min(limit, here + ORIGIN_SEARCH)
    stored = dict(
        (int(i), bytes(h))
        for i, h in await session.execute(
            select(AuditEntry.leaf_index, AuditEntry.leaf_hash).where(
                AuditEntry.leaf_index >= lo, AuditEntry.leaf_index < hi
            )
        )
    )
    own = bytes(row.leaf_hash)
    for j in range(lo, hi):
        if j == here:
            continue
        h = _row_leaf(row, j)
        if h == own or stored.get(j) == h:
            return j
    return None


async def _row(session: AsyncSession, index: int) -> Row[Any] | None:
    result = await session.execute(
        select(AuditEntry.__table__).where(AuditEntry.leaf_index == index)
    )
    return result.first()


async def _classify(session: AsyncSession, i: int, gap: tuple[int, int] | None) -> Problem:
    """Say why entry ``i`` is the first bad one: missing, inserted, reordered or altered."""
    if gap is not None:
        a, b = gap
        return Problem(
            "missing",
            a,
            f"entry {a} is missing (deleted): indices jump from {a - 1} to {b}"
            if b - a > 1
            else f"entry {a} is missing (deleted)",
            (a, b),
        )
    limit = await repository.tree_size(session)
    row = await _row(session, i)
    assert row is not None
    j = await _origin(session, row, limit)
    nxt = await _row(session, i + 1)
    next_origin = None if nxt is None else await _origin(session, nxt, limit)
    if j is not None and j != i:
        shifted = next_origin == j + 1
        if j > i and shifted:
            return Problem(
                "missing",
                i,
                f"entry {i} is missing (deleted): entries [{i}, {j}) were removed and later "
                f"rows renumbered (entry now at {i} was recorded as {j})",
                (i, j),
            )
        if j < i and shifted:
            return Problem(
                "inserted",
                j,
                f"entry {j} was inserted: entries [{j}, {i}) are new and later rows were "
                f"renumbered (entry now at {i} was recorded as {j})",
                (j, i),
            )
        return Problem(
            "reordered",
            min(i, j),
            f"entry {i} was reordered: it holds the content recorded as entry {j}",
            (min(i, j), max(i, j) + 1),
        )
    if next_origin == i:
        return Problem(
            "inserted",
            i,
            f"entry {i} was inserted: later rows were renumbered (entry now at {i + 1} was "
            f"recorded as {i})",
            (i, i + 1),
        )
    return Problem(
        "altered",
        i,
        f"entry {i} was altered: its contents do not match its recorded leaf hash",
        (i, i + 1),
    )


@dataclass(frozen=True)
class InclusionProof:
    """Entry ``index`` is in the tree of ``size`` with ``root`` (checkable with kit.merkle)."""

    index: int
    size: int
    leaf_hash: bytes
    proof: list[bytes]
    root: bytes
    checkpoint: str | None  # the signed note at ``size``, if one exists

    def verify(self) -> None:
        merkle.verify_inclusion(self.index, self.size, self.leaf_hash, self.proof, self.root)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tree_size": self.size,
            "leaf_hash": _b64(self.leaf_hash),
            "proof": [_b64(h) for h in self.proof],
            "root": _b64(self.root),
            "checkpoint": self.checkpoint,
        }


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of ``new_size`` extends the tree of ``old_size`` (checkable with kit.merkle)."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: list[bytes]

    def verify(self) -> None:
        merkle.verify_consistency(
            self.old_size, self.new_size, self.old_root, self.new_root, self.proof
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": _b64(self.old_root),
            "new_root": _b64(self.new_root),
            "proof": [_b64(h) for h in self.proof],
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def _root_at(session: AsyncSession, size: int) -> tuple[bytes, str | None]:
    checkpoint = await repository.checkpoint_at(session, size)
    if checkpoint is not None:
        return bytes(checkpoint.root), checkpoint.note
    return (await repository.load_frontier(session, size)).root(), None


async def inclusion_proof(session: AsyncSession, index: int, size: int) -> InclusionProof:
    """Proof that entry ``index`` is in the tree of ``size`` entries, from stored subtrees."""
    current = await repository.tree_size(session)
    if not 0 < size <= current:
        raise InvalidInput(f"树大小无效 / tree size must be in 1..{current}")
    if not 0 <= index < size:
        raise NotFound(f"条目不存在 / no entry {index} in a tree of size {size}")
    hashes = await repository.range_hashes(
        session, [(index, index + 1), *merkle.inclusion_ranges(index, size)]
    )
    root, note = await _root_at(session, size)
    return InclusionProof(index, size, hashes[0], hashes[1:], root, note)


async def consistency_proof(
    session: AsyncSession, old_size: int, new_size: int
) -> ConsistencyProof:
    """Proof that the tree of ``new_size`` extends the tree of ``old_size``."""
    current = await repository.tree_size(session)
    if not 0 < old_size <= new_size <= current:
        raise InvalidInput(f"树大小无效 / need 0 < old ≤ new ≤ {current}")
    proof = await repository.range_hashes(session, merkle.consistency_ranges(old_size, new_size))
    old_root, _ = await _root_at(session, old_size)
    new_root, _ = await _root_at(session, new_size)
    return ConsistencyProof(old_size, new_size, old_root, new_root, proof)
