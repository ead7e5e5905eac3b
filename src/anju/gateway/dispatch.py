"""Command delivery: sends each held device its deliverable commands, in sequence order.

Runs in every gateway process for the devices whose session it holds (``device_sessions``).
A device is served right after its session is confirmed (commands sent on an earlier session
are due at once), whenever :func:`notify_commands` is called in this process after a command
was committed, and at least every ``command_poll_seconds`` (commands queued by other
processes). Per device: one transaction picks the commands and marks them sent, then they are
sealed and published — at-least-once; the device executes each id once and acks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref

from sqlalchemy import select

from anju.devices.command_models import DeviceCommand
from anju.devices.commands import CommandService, command_message
from anju.devices.commands.rules import PENDING
from anju.gateway.ingest import Ingest
from anju.protocol.errors import ProtocolError
from anju.protocol.topics import down_topic

logger = logging.getLogger("anju.gateway.dispatch")

EXPIRE_EVERY_SECONDS = 10.0
_dispatchers: weakref.WeakSet[CommandDispatcher] = weakref.WeakSet()


def notify_commands() -> None:
    """Wake every dispatcher of this process (call after committing new commands)."""
    for dispatcher in list(_dispatchers):
        dispatcher.wake()


class CommandDispatcher:
    """Delivers commands for the sessions one :class:`Ingest` holds."""

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest
        self.platform = ingest.platform
        self._wake = asyncio.Event()
        self._fresh: set[str] = set()
        self._last_expire = 0.0
        _dispatchers.add(self)

    def wake(self, device_id: str | None = None) -> None:
        """Deliver soon; ``device_id``: that device has just confirmed a new session."""
        if device_id is not None:
            self._fresh.add(device_id)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set (errors are logged; the loop goes on)."""
        poll = self.ingest.options.command_poll_seconds
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.deliver_once()
            except Exception:
                logger.exception("command delivery failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll)

    async def deliver_once(self) -> int:
        """One pass over the held devices with pending commands; how many were sent."""
        fresh, self._fresh = self._fresh, set()
        held = set(self.ingest.held_devices())
        fresh &= held
        await self._expire_if_due()
        candidates = fresh | await self._with_pending(held - fresh)
        sent = 0
        for device_id in sorted(candidates):
            sent += await self._deliver(device_id, new_session=device_id in fresh)
        return sent

    async def _expire_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_expire < EXPIRE_EVERY_SECONDS:
            return
        self._last_expire = now
        async with self.platform.db.transaction() as session:
            await CommandService(self.platform, session).expire_due()

    async def _with_pending(self, device_ids: set[str]) -> set[str]:
        found: set[str] = set()
        ids = sorted(device_ids)
        if not ids:
            return found
        async with self.platform.db.transaction() as session:
            for start in range(0, len(ids), 500):
                query = (
                    select(DeviceCommand.device_id)
                    .where(
                        DeviceCommand.device_id.in_(ids[start : start + 500]),
                        DeviceCommand.status.in_([str(s) for s in PENDING]),
                    )
                    .distinct()
                )
                found.update((await session.execute(query)).scalars())
        return found

    async def _deliver(self, device_id: str, *, new_session: bool) -> int:
        channel = self.ingest.channel(device_id)
        if channel is None:
            return 0
        async with self.platform.db.transaction() as session:
            svc = CommandService(self.platform, session)
            due = await svc.deliverable(device_id, new_session=new_session)
            await svc.mark_sent([c.id for c in due])
            messages = [command_message(c) for c in due]
        sent = 0
        for message in messages:
            if channel.closed:
                break  # replaced meanwhile: the commands are due again on the new session
            try:
                frame = channel.seal(message)
            except ProtocolError as exc:
                logger.warning("command %s could not be sealed: %s", message["id"], exc.code)
                continue
            self.ingest.publish(down_topic(device_id), frame)
            sent += 1
        self.ingest.counters.commands_sent += sent
        return sent
