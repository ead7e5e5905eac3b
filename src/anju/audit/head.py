"""The audit tree head each engine last committed, so an append need not read the frontier.

An append reads the tree head under the tree lock (:func:`repository.head`: size and the hash of
the last leaf). When that matches what this process last *committed* through the same engine,
the frontier kept from that commit is the frontier of the stored tree — entries are append-only,
so the first ``size`` leaves and their frontier never change — and the append skips the one or
two queries that load it. Anything else (another process appended, a transaction rolled back,
nothing cached) reads it from the tables as before. Only committed state is remembered.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from anju.kit import merkle

_PENDING = "anju.audit.head"  # Session.info key: (engine, last leaf hash, frontier) to keep
_committed: WeakKeyDictionary[Any, tuple[bytes, merkle.Frontier]] = WeakKeyDictionary()


def cached_frontier(
    session: AsyncSession, size: int, last_leaf: bytes | None
) -> merkle.Frontier | None:
    """The frontier of the stored tree if the head read under the lock is the one this process
    last committed; an empty frontier for an empty tree; else None (read it from the tables)."""
    if last_leaf is None:
        return merkle.Frontier() if size == 0 else None
    hit = _committed.get(session.get_bind())
    if hit is None or hit[0] != last_leaf or hit[1].size != size:
        return None
    return hit[1].copy()


def remember_after_commit(
    session: AsyncSession, frontier: merkle.Frontier, last_leaf: bytes
) -> None:
    """Keep ``frontier`` (after this transaction's appends; ``last_leaf`` is the hash of its
    last leaf) once the transaction commits."""
    info: dict[str, Any] = session.info
    if _PENDING not in info:
        sync = session.sync_session
        event.listen(sync, "after_commit", _after_commit)
        event.listen(sync, "after_rollback", _after_rollback)
    info[_PENDING] = (session.get_bind(), last_leaf, frontier.copy())


def forget() -> None:
    """Drop every remembered head (tests that rewrite the tables behind the log's back)."""
    _committed.clear()


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending is not None:
        engine, last_leaf, frontier = pending
        _committed[engine] = (last_leaf, frontier)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
