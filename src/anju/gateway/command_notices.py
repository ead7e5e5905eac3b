"""``LISTEN anju_commands``: commands queued by other processes wake this gateway at once.

On PostgreSQL the enqueuing transaction sends ``NOTIFY anju_commands`` (delivered only if it
commits; :mod:`anju.devices.commands.wakeup`). :class:`CommandNotices` holds one connection
that listens on the channel and hands the device ids to the dispatcher. When the connection is
lost (database restart, network, an administrator's ``pg_terminate_backend``) it reconnects with
back-off and asks for a full pass, since notices sent meanwhile are gone. On SQLite it does
nothing: the dispatcher's poll covers other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from typing import Any

from anju.db import Database
from anju.devices.commands.wakeup import CHANNEL, device_of_notice
from anju.kit.aio import wait_any

logger = logging.getLogger("anju.gateway.dispatch")

FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
STOP_GRACE_SECONDS = 2.0

#: Called with the device ids named by a notice; None after (re)connecting: "check everyone".
OnNotice = Callable[[Collection[str] | None], None]


class CommandNotices:
    """Passes other processes' command notices to ``on_notice`` while :meth:`run` runs."""

    def __init__(self, db: Database, on_notice: OnNotice) -> None:
        self.db = db
        self.on_notice = on_notice
        self.connections = 0  # how many times it started listening (1 + reconnects)
        self.notices = 0
        self.server_pid: int | None = None  # the listening PostgreSQL backend, while listening

    @property
    def enabled(self) -> bool:
        return self.db.engine.dialect.name == "postgresql"

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` is set, reconnecting with back-off."""
        if not self.enabled:
            return
        backoff = FIRST_BACKOFF_SECONDS
        while not stop.is_set():
            try:
                await self._listen_until(stop)
                backoff = FIRST_BACKOFF_SECONDS
            except Exception as exc:
                logger.warning(
                    "LISTEN %s: %s: %s; retrying in %.1f s",
                    CHANNEL,
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
            finally:
                self.server_pid = None
            await wait_any(stop, within=backoff)

    async def _listen_until(self, stop: asyncio.Event) -> None:
        """:meth:`_listen_once`, abandoned if it has not ended shortly after ``stop`` (a gateway
        stopping while the database is unreachable must not wait for a connect timeout)."""
        listening = asyncio.ensure_future(self._listen_once(stop))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({listening, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not listening.done():
                await asyncio.wait({listening}, timeout=STOP_GRACE_SECONDS)
        finally:
            stopping.cancel()
            if not listening.done():
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listening
        if not listening.cancelled():
            listening.result()  # its error, if any

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        device_id = device_of_notice(payload)
        if device_id is not None:
            self.notices += 1
            self.on_notice((device_id,))

    async def _listen_once(self, stop: asyncio.Event) -> None:
        """One connection's life: listen until it is lost or ``stop`` is set."""
        lost = asyncio.Event()
        async with self.db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection  # asyncpg.Connection
            driver.add_termination_listener(lambda _conn: lost.set())
            await driver.add_listener(CHANNEL, self._notified)
            self.server_pid = int(driver.get_server_pid())
            self.connections += 1
            self.on_notice(None)  # anything queued before we listened (or while we were away)
            await wait_any(lost, stop)
            if lost.is_set():
                await conn.invalidate()
                raise ConnectionError("the listening connection was closed")
            with contextlib.suppress(Exception):
                await driver.remove_listener(CHANNEL, self._notified)
