"""Queries on the audit tables. Callers hold the tree lock (:func:`lock_tree`) before appending."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, insert, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit.models import AuditCheckpoint, AuditEntry, AuditNode, AuditQueued
from anju.kit import merkle

# pg_advisory_xact_lock key of the audit tree: ASCII "anjuaudt" as a signed 64-bit integer.
TREE_LOCK_KEY = 0x616E6A7561756474


async def lock_tree(session: AsyncSession) -> None:
    """Serialise appends across processes until the caller's transaction ends.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: every transaction is already
    ``BEGIN IMMEDIATE`` (one writer), so nothing to do.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": TREE_LOCK_KEY})


async def tree_size(session: AsyncSession) -> int:
    """Number of entries: highest leaf index + 1."""
    value = await session.scalar(select(func.max(AuditEntry.leaf_index)))
    return 0 if value is None else int(value) + 1


async def head(session: AsyncSession) -> tuple[int, bytes | None, int]:
    """In one statement: the number of entries, the hash of the last one (None when empty)
    and the tree size of the latest checkpoint (0 when none)."""
    signed = select(func.max(AuditCheckpoint.tree_size)).scalar_subquery()
    row = (
        await session.execute(
            select(AuditEntry.leaf_index, AuditEntry.leaf_hash, signed)
            .order_by(AuditEntry.leaf_index.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return 0, None, await signed_size(session)
    return int(row[0]) + 1, bytes(row[1]), 0 if row[2] is None else int(row[2])


async def lock_and_head(session: AsyncSession) -> tuple[int, bytes | None, int]:
    """:func:`lock_tree`, then :func:`head` read after the lock was granted. On PostgreSQL in
    one round trip: the function ``anju_audit_lock_head`` (migration 0024) takes the lock and
    reads the head with a fresh snapshot."""
    if session.get_bind().dialect.name != "postgresql":
        return await head(session)
    row = (
        await session.execute(
            text("SELECT tree_size, last_leaf, signed_size FROM anju_audit_lock_head(:k)"),
            {"k": TREE_LOCK_KEY},
        )
    ).one()
    return int(row[0]), None if row[1] is None else bytes(row[1]), int(row[2])


async def try_lock_and_head(session: AsyncSession) -> tuple[int, bytes | None, int] | None:
    """:func:`lock_and_head` if the tree lock is free now; None when another transaction holds
    it (PostgreSQL: ``anju_audit_try_lock_head``, migration 0025). SQLite never waits here: its
    transactions are ``BEGIN IMMEDIATE``."""
    if session.get_bind().dialect.name != "postgresql":
        return await head(session)
    row = (
        await session.execute(
            text(
                "SELECT locked, tree_size, last_leaf, signed_size FROM anju_audit_try_lock_head(:k)"
            ),
            {"k": TREE_LOCK_KEY},
        )
    ).one()
    if not row[0]:
        return None
    return int(row[1]), None if row[2] is None else bytes(row[2]), int(row[3])


async def perfect_hashes(
    session: AsyncSession, positions: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """Stored hashes of perfect subtrees ``(level, index)``; leaves come from the entries."""
    wanted = set(positions)
    leaves = [ix for lv, ix in wanted if lv == 0]
    nodes = [(lv, ix) for lv, ix in wanted if lv > 0]
    found: dict[tuple[int, int], bytes] = {}
    if leaves:
        rows = await session.execute(
            select(AuditEntry.leaf_index, AuditEntry.leaf_hash).where(
                AuditEntry.leaf_index.in_(leaves)
            )
        )
        found.update({(0, int(ix)): bytes(h) for ix, h in rows})
    for chunk_start in range(0, len(nodes), 200):
        chunk = nodes[chunk_start : chunk_start + 200]
        # A row-value IN with expanding parameters: one cached statement whatever the positions
        # (an OR of ANDs was compiled anew on every append).
        node_rows = await session.execute(
            select(AuditNode.level, AuditNode.node_index, AuditNode.hash).where(
                tuple_(AuditNode.level, AuditNode.node_index).in_(chunk)
            )
        )
        found.update({(int(lv), int(ix)): bytes(h) for lv, ix, h in node_rows})
    return found


async def range_hashes(session: AsyncSession, ranges: Sequence[merkle.Range]) -> list[bytes]:
    """MTH(D[a:b]) for each range, from stored subtrees (one or two queries in all)."""
    plans = [merkle.perfect_subtrees(a, b) for a, b in ranges]
    stored = await perfect_hashes(session, (p for plan in plans for p in plan))
    out: list[bytes] = []
    for (a, b), plan in zip(ranges, plans, strict=True):
        missing = [p for p in plan if p not in stored]
        if missing:
            raise LookupError(f"audit tree is missing stored subtree(s) {missing} for [{a}, {b})")
        out.append(merkle.fold([stored[p] for p in plan]))
    return out


async def load_frontier(session: AsyncSession, size: int) -> merkle.Frontier:
    """The compact range of the first ``size`` entries, from stored subtrees."""
    positions = merkle.frontier_positions(size)
    stored = await perfect_hashes(session, positions)
    missing = [p for p in positions if p not in stored]
    if missing:
        raise LookupError(f"audit tree is missing stored subtree(s) {missing} at size {size}")
    return merkle.Frontier.from_hashes(size, [stored[p] for p in positions])


_INSERT_ENTRIES_AND_NODES = text(
    """
    WITH entries AS (
        INSERT INTO audit_entries
            (leaf_index, recorded_at, org_id, actor, action, target, outcome, details, leaf_hash)
        SELECT * FROM unnest(
            CAST(:leaf_index AS bigint[]), CAST(:recorded_at AS timestamptz[]),
            CAST(:org_id AS text[]), CAST(:actor AS text[]), CAST(:action AS text[]),
            CAST(:target AS text[]), CAST(:outcome AS text[]), CAST(:details AS text[]),
            CAST(:leaf_hash AS bytea[])
        )
    )
    INSERT INTO audit_nodes (level, node_index, hash)
    SELECT * FROM unnest(
        CAST(:level AS integer[]), CAST(:node_index AS bigint[]), CAST(:hash AS bytea[])
    )
    """
)
_ENTRY_COLUMNS = (
    "leaf_index", "recorded_at", "org_id", "actor", "action", "target", "outcome", "details",
    "leaf_hash",
)  # fmt: skip


async def insert_appended(
    session: AsyncSession, rows: Sequence[dict[str, Any]], nodes: Sequence[merkle.Node]
) -> None:
    """Insert an append's entry rows and the interior nodes they complete. On PostgreSQL in one
    round trip (one statement over arrays); elsewhere with :func:`insert_entries` and
    :func:`insert_nodes`."""
    if session.get_bind().dialect.name != "postgresql":
        await insert_entries(session, rows)
        await insert_nodes(session, nodes)
        return
    params: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in _ENTRY_COLUMNS}
    params["level"] = [n.level for n in nodes]
    params["node_index"] = [n.index for n in nodes]
    params["hash"] = [n.hash for n in nodes]
    await session.execute(_INSERT_ENTRIES_AND_NODES, params)


async def insert_entries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert entry rows (executemany)."""
    if rows:
        await session.execute(insert(AuditEntry), list(rows))


async def insert_nodes(session: AsyncSession, nodes: Sequence[merkle.Node]) -> None:
    """Insert interior subtree hashes (executemany)."""
    if nodes:
        await session.execute(
            insert(AuditNode),
            [{"level": n.level, "node_index": n.index, "hash": n.hash} for n in nodes],
        )


async def queue(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Queue entry rows (``org_id``, ``actor``, ``action``, ``target``, ``outcome``, checked
    ``details``) in the caller's transaction: no tree lock."""
    if rows:
        await session.execute(insert(AuditQueued), list(rows))


_QUEUE_FIELDS = (
    AuditQueued.id, AuditQueued.org_id, AuditQueued.actor, AuditQueued.action,
    AuditQueued.target, AuditQueued.outcome, AuditQueued.details,
)  # fmt: skip


async def take_queued(session: AsyncSession, limit: int) -> list[Any]:
    """Delete and return the oldest ``limit`` queued entries, oldest first (one statement).
    Callers hold the tree lock, so no other transaction takes the same rows."""
    oldest = select(AuditQueued.id).order_by(AuditQueued.id).limit(limit)
    taken = await session.execute(
        delete(AuditQueued).where(AuditQueued.id.in_(oldest)).returning(*_QUEUE_FIELDS)
    )
    return sorted(taken.all(), key=lambda row: int(row[0]))


async def queued_count(session: AsyncSession) -> int:
    """Entries committed and not yet appended."""
    return int(await session.scalar(select(func.count()).select_from(AuditQueued)) or 0)


async def latest_checkpoint(session: AsyncSession) -> AuditCheckpoint | None:
    """The checkpoint with the largest tree size."""
    return await session.scalar(
        select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
    )


async def signed_size(session: AsyncSession) -> int:
    """Tree size of the latest checkpoint (0 when none)."""
    value = await session.scalar(select(func.max(AuditCheckpoint.tree_size)))
    return 0 if value is None else int(value)


async def checkpoint_at(session: AsyncSession, size: int) -> AuditCheckpoint | None:
    """The checkpoint signed at exactly ``size`` entries, if any."""
    return await session.get(AuditCheckpoint, size)


async def all_checkpoints(session: AsyncSession) -> list[AuditCheckpoint]:
    """Every checkpoint, smallest tree first."""
    rows = await session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size))
    return list(rows)


async def entry_at(session: AsyncSession, index: int) -> AuditEntry | None:
    """The entry at ``index``."""
    return await session.get(AuditEntry, index)


async def tail(session: AsyncSession, count: int, org_id: str | None = None) -> list[AuditEntry]:
    """The last ``count`` entries (optionally of one organisation), newest first."""
    return await search(session, limit=count, org_id=org_id)


async def search(
    session: AsyncSession,
    *,
    limit: int,
    org_id: str | None = None,
    before: int | None = None,
    action_prefix: str | None = None,
    actor: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEntry]:
    """Entries matching every given filter, newest first; page with ``before`` (a leaf index)."""
    query = select(AuditEntry).order_by(AuditEntry.leaf_index.desc()).limit(limit)
    if org_id is not None:
        query = query.where(AuditEntry.org_id == org_id)
    if before is not None:
        query = query.where(AuditEntry.leaf_index < before)
    if action_prefix:
        query = query.where(AuditEntry.action.startswith(action_prefix, autoescape=True))
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if outcome is not None:
        query = query.where(AuditEntry.outcome == outcome)
    if since is not None:
        query = query.where(AuditEntry.recorded_at >= since)
    if until is not None:
        query = query.where(AuditEntry.recorded_at < until)
    return list(await session.scalars(query))


async def iter_entries(session: AsyncSession, batch: int = 5000) -> AsyncIterator[Row[Any]]:
    """Every entry row (plain columns, not ORM objects) in leaf-index order, in batches."""
    table = AuditEntry.__table__
    after = -1
    while True:
        result = await session.execute(
            select(table)
            .where(table.c.leaf_index > after)
            .order_by(table.c.leaf_index)
            .limit(batch)
        )
        rows = list(result)
        if not rows:
            return
        for row in rows:
            yield row
        after = int(rows[-1].leaf_index)


async def nodes_completed_by(
    session: AsyncSession, start: int, end: int
) -> dict[tuple[int, int], bytes]:
    """Stored nodes completed by appending leaves [start, end): those ending in (start, end]."""
    conditions = []
    level = 1
    while (1 << level) <= end:
        first = start >> level  # smallest index whose last leaf is at or after start
        last = (end >> level) - 1  # largest index that ends within [0, end)
        if last >= first:
            conditions.append(
                and_(AuditNode.level == level, AuditNode.node_index.between(first, last))
            )
        level += 1
    if not conditions:
        return {}
    rows = await session.execute(
        select(AuditNode.level, AuditNode.node_index, AuditNode.hash).where(or_(*conditions))
    )
    return {(int(lv), int(ix)): bytes(h) for lv, ix, h in rows}


async def count_nodes(session: AsyncSession) -> int:
    """Number of stored interior nodes."""
    return int(await session.scalar(select(func.count()).select_from(AuditNode)) or 0)
