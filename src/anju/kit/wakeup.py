"""In-process wake-ups after commit: waiters learn at once that a transaction changed something.

A service calls :meth:`Wakeup.after_commit` in its transaction; right after that transaction
commits (never after a rollback) every subscribed :class:`asyncio.Event` is set. Waiters then
read the database themselves, so a missed or merged wake-up costs nothing but latency.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

logger = logging.getLogger("anju.kit.wakeup")


class Wakeup:
    """A named wake-up signal of this process (see module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._key = f"anju.wakeup.{name}"
        self._waiters: set[asyncio.Event] = set()

    def subscribe(self) -> asyncio.Event:
        """A new event set after each announcing commit (give it back with unsubscribe)."""
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        return waiter

    def unsubscribe(self, waiter: asyncio.Event) -> None:
        self._waiters.discard(waiter)

    def wake(self) -> None:
        """Set every waiter now."""
        for waiter in list(self._waiters):
            waiter.set()

    def after_commit(self, session: AsyncSession) -> None:
        """Wake the waiters once ``session``'s transaction commits."""
        info: dict[str, Any] = session.info
        if info.get(self._key):
            return
        info[self._key] = True
        sync = session.sync_session

        def committed(_session: Session) -> None:
            _session.info.pop(self._key, None)
            try:
                self.wake()
            except Exception:  # a waiter's failure never undoes the commit
                logger.exception("wake-up %s failed", self.name)

        def rolled_back(_session: Session) -> None:
            _session.info.pop(self._key, None)

        event.listen(sync, "after_commit", committed, once=True)
        event.listen(sync, "after_rollback", rolled_back, once=True)
