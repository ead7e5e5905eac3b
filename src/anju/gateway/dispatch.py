"""Command delivery: sends each held device its deliverable commands, in sequence order.

Runs in every gateway process for the devices whose session it holds (``device_sessions``).
A device is served

* right after its session is confirmed (commands sent on an earlier session are due at once);
* right after a transaction that queued a command for it commits — in this process through
  :mod:`anju.devices.commands.wakeup`, from other processes through PostgreSQL
  ``LISTEN anju_commands`` (:mod:`anju.gateway.command_notices`);
* at the latest at the next full pass, every ``command_poll_seconds`` (retries that are due,
  commands queued by another process on SQLite, notices missed while the database was away).

Per device: one transaction picks the commands and marks them sent, then they are sealed and
published — at-least-once; the device executes each id once and acks again. Up to
``DELIVERY_CONCURRENCY`` devices are served at once, each by at most one delivery at a time:
a device woken again while its delivery runs is served once more right after it. Delivery
never waits for a pass to end — a device woken by a commit starts as soon as a slot is free.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection

from sqlalchemy import select

from anju.devices.command_models import DeviceCommand
from anju.devices.commands import CommandService, command_message
from anju.devices.commands.rules import PENDING
from anju.devices.commands.wakeup import subscribe, wake_local
from anju.gateway.ingest import Ingest
from anju.kit.aio import wait_any
from anju.protocol.errors import ProtocolError
from anju.protocol.topics import down_topic

logger = logging.getLogger("anju.gateway.dispatch")

EXPIRE_EVERY_SECONDS = 10.0
# Devices served at once. Each is a short transaction and a publish; one after another, the
# pass waited out every database round trip in turn and fell behind the API under load
# (bench_commands: commands created at 98/s, sent at a fraction of that). A device's own
# commands still go out in order: one device is served by one delivery at a time.
DELIVERY_CONCURRENCY = 8
STOP_GRACE_SECONDS = 5.0


def notify_commands() -> None:
    """Wake every running dispatcher of this process for a full pass.

    Not needed after :meth:`CommandService.enqueue`, which wakes delivery on commit itself.
    """
    wake_local(None)


class CommandDispatcher:
    """Delivers commands for the sessions one :class:`Ingest` holds."""

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest
        self.platform = ingest.platform
        self._wake = asyncio.Event()
        self._fresh: set[str] = set()  # devices with a just-confirmed session
        self._hinted: set[str] = set()  # devices with newly committed commands
        self._full_due = True
        self._last_full = float("-inf")
        self._last_expire = 0.0
        self._slots = asyncio.Semaphore(DELIVERY_CONCURRENCY)
        self._serving: dict[str, asyncio.Task[int]] = {}  # device → its delivery in flight
        self._again: dict[str, bool] = {}  # device → serve again after it (new session?)
        self.full_passes = 0

    @property
    def full_pass_due(self) -> bool:
        """A full pass was asked for and has not started yet."""
        return self._full_due

    def wake(self, device_id: str | None = None) -> None:
        """Deliver soon; ``device_id``: that device has just confirmed a new session."""
        if device_id is not None:
            self._fresh.add(device_id)
        else:
            self._full_due = True
        self._wake.set()

    def commands_queued(self, device_ids: Collection[str] | None) -> None:
        """New commands were committed for ``device_ids`` (None: for any device)."""
        if device_ids is None:
            self._full_due = True
        else:
            self._hinted.update(device_ids)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set (errors are logged; the loop goes on)."""
        unsubscribe = subscribe(self.commands_queued, holds=self.ingest.holds)
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self._start_pass()
                except Exception:
                    logger.exception("command delivery failed; retrying")
                poll = self.ingest.options.command_poll_seconds
                # Until woken, stopped, or the next full pass is due.
                await wait_any(self._wake, stop, within=self._last_full + poll - time.monotonic())
        finally:
            unsubscribe()
            await self._finish_deliveries()

    async def _finish_deliveries(self) -> None:
        """Let the deliveries in flight end; cancel those still running after a grace period
        (a cancelled one rolls back: its commands are sent on the device's next session)."""
        self._again.clear()
        running = list(self._serving.values())
        if running:
            await asyncio.wait(running, timeout=STOP_GRACE_SECONDS)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def deliver_once(self) -> int:
        """One pass (:meth:`_start_pass`), waiting for the deliveries it started; how many
        commands they sent. A delivery's error is raised after the others ended."""
        started = await self._start_pass()
        results = await asyncio.gather(*started, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(r for r in results if isinstance(r, int))

    async def _start_pass(self) -> list[asyncio.Task[int]]:
        """Start delivering to the fresh sessions, the devices with new commands and — every
        ``command_poll_seconds`` or when asked — every held device with something to send or
        close. Returns the deliveries started (they run on; see :meth:`_serve`)."""
        held = set(self.ingest.held_devices())
        fresh, self._fresh = self._fresh & held, set()
        hinted, self._hinted = self._hinted & held, set()
        poll = self.ingest.options.command_poll_seconds
        now = time.monotonic()
        await self._expire_if_due()
        if self._full_due or now - self._last_full >= poll:
            self._full_due = False
            self._last_full = now
            self.full_passes += 1
            # Devices with something to send or close now: not those only waiting for acks.
            candidates = await self._with_work(held) | await self._with_pending(fresh)
        else:
            # One query for every fresh session: most devices connect with nothing waiting.
            candidates = await self._with_pending(fresh) | hinted
        started = []
        for device_id in sorted(candidates):
            task = self._serve(device_id, new_session=device_id in fresh)
            if task is not None:
                started.append(task)
        return started

    def _serve(self, device_id: str, *, new_session: bool) -> asyncio.Task[int] | None:
        """Start a delivery to ``device_id``, or — when one is running — ask for another right
        after it (None)."""
        if device_id in self._serving:
            self._again[device_id] = self._again.get(device_id, False) or new_session
            return None
        task = asyncio.create_task(self._deliver_in_turn(device_id, new_session))
        self._serving[device_id] = task
        task.add_done_callback(lambda done: self._served(device_id, done))
        return task

    def _served(self, device_id: str, done: asyncio.Task[int]) -> None:
        if self._serving.get(device_id) is done:
            del self._serving[device_id]
        if not done.cancelled() and (error := done.exception()) is not None:
            # Its commands are still pending: the next full pass finds them again.
            logger.error("command delivery to %s failed; retrying", device_id, exc_info=error)
        if device_id in self._again:
            self._serve(device_id, new_session=self._again.pop(device_id))

    async def _deliver_in_turn(self, device_id: str, new_session: bool) -> int:
        async with self._slots:
            return await self._deliver(device_id, new_session=new_session)

    async def _expire_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_expire < EXPIRE_EVERY_SECONDS:
            return
        self._last_expire = now
        async with self.platform.db.transaction() as session:
            await CommandService(self.platform, session).expire_due()

    async def _with_work(self, device_ids: set[str]) -> set[str]:
        if not device_ids:
            return set()
        async with self.platform.db.transaction() as session:
            return await CommandService(self.platform, session).with_work(sorted(device_ids))

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
            await svc.mark_due_sent(due)
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
