"""One appender per database in a process: committed, queued audit entries go into the tree in
batches, not one tree lock per transaction.

A transaction that audits through :meth:`anju.audit.AuditLog.record_at_commit` tries the tree
lock right before its commit; when another transaction holds it, the entries go into
``audit_queue`` instead (no waiting), and once committed the transaction waits in
:meth:`Sequencer.drain` until they are in the tree. The first waiter starts a round; waiters
arriving during a round are served together by the next one, so under load one lock, one head
read and one insert carry many transactions' entries, and a backlog after a pause clears in a
round or two instead of one lock hand-over per transaction. The queue is shared by every
process: a round takes the oldest queued entries whoever queued them, so entries left by a
process that died between its commit and its round are appended by the next round anywhere (or
the periodic checkpoint job).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from weakref import WeakKeyDictionary

logger = logging.getLogger(__name__)


class Sequencer:
    """Single-flight rounds: :meth:`drain` returns after a round that started after it was
    called has finished."""

    def __init__(self) -> None:
        self._waiting: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        # What this process's transactions did with entries recorded at commit: appended
        # them under a free lock, or queued them; and the rounds that appended the queue.
        self.appended_at_commit = 0
        self.queued_at_commit = 0
        self.rounds = 0

    async def drain(self, round_: Callable[[], Awaitable[None]]) -> None:
        """Run ``round_`` (append everything queued) — or wait for the next round to do it.

        A failed round is logged, not raised: the entries are committed and stay queued for a
        later round; the caller's own change has already committed."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._serve(round_), name="anju-audit-sequencer")
        await asyncio.shield(waiter)

    async def _serve(self, round_: Callable[[], Awaitable[None]]) -> None:
        while self._waiting:
            served, self._waiting = self._waiting, []
            try:
                await round_()
                self.rounds += 1
            except Exception:
                logger.exception("audit: appending queued entries failed; they stay queued")
            finally:
                for waiter in served:
                    if not waiter.done():
                        waiter.set_result(None)


_sequencers: WeakKeyDictionary[object, Sequencer] = WeakKeyDictionary()


def sequencer_for(database: object) -> Sequencer:
    """The sequencer of ``database`` in this process."""
    found = _sequencers.get(database)
    if found is None:
        found = _sequencers[database] = Sequencer()
    return found
