"""After a fault: compare what the locks did with what the platform stored and shows.

* every event a lock durably recorded is stored exactly once, and nothing else is;
* every command reached a final status that matches the lock: acknowledged, executed once
  (one execution event carrying its id, one execution over all the lock's power cycles);
* the registry's online state and ``device_sessions`` name the session the lock really has.

The waits poll the database with generous limits (a loaded 2-core machine); a command whose ack
was lost is only sent again after the platform's retry interval, so :func:`settle_commands`
moves the test clock past it when delivery stalls — time the platform would otherwise wait.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

from sqlalchemy import select

from anju.devices.command_models import DeviceCommand
from anju.devices.commands import RETRY_INTERVAL_SECONDS, CommandStatus
from anju.devices.models import Device
from anju.gateway.models import DeviceEvent, DeviceSession
from anju.gateway.runner import Gateway
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.lock_fleet import LockFleet

#: How long a check waits for the platform to catch up (generous: a loaded 2-core machine).
SETTLE_S = 60.0
FINAL = frozenset(
    {CommandStatus.ACKED, CommandStatus.FAILED, CommandStatus.EXPIRED, CommandStatus.CANCELLED}
)


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Poll ``check`` (which reads the database) until it holds; AssertionError naming ``what``."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.1)


async def stored_events(platform: Platform, device_ids: Iterable[str]) -> list[DeviceEvent]:
    async with platform.db.transaction() as session:
        query = select(DeviceEvent).where(DeviceEvent.device_id.in_(list(device_ids)))
        return list((await session.execute(query)).scalars())


def _by_device(events: list[DeviceEvent]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in events:
        out.setdefault(e.device_id, []).append(e.event_id)
    return out


async def wait_all_events_stored(platform: Platform, fleet: LockFleet, within: float) -> None:
    """Wait until every event the locks recorded is stored (the locks keep uploading)."""
    missing: dict[str, int] = {}

    async def done() -> bool:
        stored = _by_device(await stored_events(platform, [lock.device_id for lock in fleet]))
        for lock in fleet:
            missing[lock.device_id] = len(
                set(lock.ledger.recorded) - set(stored.get(lock.device_id, []))
            )
        return not any(missing.values())

    try:
        await eventually(done, within, "every recorded event stored")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {describe(fleet, missing)}") from None


def describe(fleet: LockFleet, missing: dict[str, int]) -> str:
    """The locks' view, for failure messages."""
    parts = []
    for lock in fleet:
        state = "off"
        if lock.firmware is not None:
            stats = lock.firmware.client.stats
            state = (
                f"online={lock.online} pending={lock.firmware.buffer.stats().pending} "
                f"sessions={stats.sessions} connects={stats.connects} last_error={stats.last_error}"
            )
        parts.append(
            f"{lock.device_id[:8]}: recorded={len(lock.ledger.recorded)} "
            f"missing={missing.get(lock.device_id)} {state}"
        )
    return "; ".join(parts)


async def assert_events_exactly_once(platform: Platform, fleet: LockFleet) -> int:
    """Stored events == recorded events, per lock, each once; the total."""
    stored = _by_device(await stored_events(platform, [lock.device_id for lock in fleet]))
    total = 0
    for lock in fleet:
        recorded = lock.ledger.recorded
        assert len(set(recorded)) == len(recorded), "a lock reused an event id"
        rows = stored.get(lock.device_id, [])
        duplicates = [i for i, n in Counter(rows).items() if n > 1]
        assert not duplicates, f"stored twice: {duplicates[:5]}"
        missing = set(recorded) - set(rows)
        unknown = set(rows) - set(recorded)
        assert not missing, f"{len(missing)} events of {lock.device_id[:8]} lost"
        assert not unknown, f"{len(unknown)} events stored that the lock never recorded"
        total += len(rows)
    return total


async def command_rows(platform: Platform, command_ids: Iterable[str]) -> list[DeviceCommand]:
    async with platform.db.transaction() as session:
        query = select(DeviceCommand).where(DeviceCommand.id.in_(list(command_ids)))
        return list((await session.execute(query)).scalars())


async def settle_commands(
    platform: Platform, clock: FixedClock, command_ids: Iterable[str], within: float
) -> int:
    """Wait until every command is final; when none finished for 2 s, let the platform's retry
    interval pass (the test clock) so unacknowledged ones are sent again. The number of times
    the clock was moved."""
    ids = list(command_ids)
    deadline = time.monotonic() + within
    moved, finished, progress_at = 0, -1, time.monotonic()
    while True:
        rows = await command_rows(platform, ids)
        now_final = sum(r.status in FINAL for r in rows)
        if now_final == len(ids):
            return moved
        if now_final != finished:
            finished, progress_at = now_final, time.monotonic()
        elif time.monotonic() - progress_at > 2.0:
            clock.advance(seconds=RETRY_INTERVAL_SECONDS + 1)
            moved += 1
            progress_at = time.monotonic()
        if time.monotonic() > deadline:
            stuck = {r.id[:8]: (r.status, r.attempts) for r in rows if r.status not in FINAL}
            raise AssertionError(f"commands not final within {within} s: {stuck}")
        await asyncio.sleep(0.1)


async def execution_counts(
    platform: Platform, device_ids: Iterable[str]
) -> Counter[tuple[str, str | None]]:
    """(device id, command id) → how many execution events the locks reported (the bolt moved
    by that command: ``lock.locked`` / ``lock.unlocked`` with ``data.cmd``)."""
    events = await stored_events(platform, device_ids)
    return Counter(
        (e.device_id, json.loads(e.data).get("cmd"))
        for e in events
        if e.kind in ("lock.locked", "lock.unlocked")
    )


async def execution_events(platform: Platform, device_id: str, command_id: str) -> int:
    return (await execution_counts(platform, [device_id]))[(device_id, command_id)]


async def assert_commands_executed_once(
    platform: Platform, fleet: LockFleet, commands: dict[str, str]
) -> None:
    """``commands``: command id → device id. Each is acked, executed exactly once by its lock
    (one execution event with its id), and the locks executed nothing else."""
    rows = {r.id: r for r in await command_rows(platform, commands)}
    for command_id, row in rows.items():
        assert row.status == CommandStatus.ACKED, (command_id, row.status, row.result_code)
        assert 1 <= row.attempts <= row.max_attempts
    executions = await execution_counts(platform, [lock.device_id for lock in fleet])
    for command_id, device_id in commands.items():
        assert executions[(device_id, command_id)] == 1, (command_id, executions)
    per_lock = Counter(commands.values())
    for lock in fleet:
        assert lock.executed == per_lock[lock.device_id], (lock.device_id[:8], lock.executed)


async def wait_sessions_reconciled(
    platform: Platform, gateway: Gateway | None, fleet: LockFleet, within: float
) -> None:
    """Wait until, for every running lock, the registry shows it online and ``device_sessions``
    (and ``gateway``, when in this process) hold exactly the session the lock has; powered-off
    locks are not checked."""

    async def reconciled() -> bool:
        running = [lock for lock in fleet if lock.firmware is not None]
        async with platform.db.transaction() as session:
            for lock in running:
                session_id = lock.lock.client.session_id
                device = await session.get(Device, lock.device_id)
                row = await session.get(DeviceSession, lock.device_id)
                if (
                    session_id is None
                    or device is None
                    or not device.online
                    or row is None
                    or row.session_id != session_id.hex()
                ):
                    return False
                if gateway is not None and not holds(gateway, lock.device_id, session_id):
                    return False
        return True

    await eventually(reconciled, within, "registry and gateway agree with the locks' sessions")


def holds(gateway: Gateway, device_id: str, session_id: bytes) -> bool:
    """The gateway holds (and has recorded) exactly this session of the device."""
    channel = gateway.ingest.channel(device_id)
    return (
        channel is not None
        and channel.session_id == session_id
        and device_id in gateway.ingest.held_devices()
        and int.from_bytes(session_id[:2], "big") == gateway.ingest.instance
    )


async def assert_all_offline(platform: Platform, device_ids: Iterable[str]) -> None:
    """After the locks and the gateway stopped: nobody shows online, no session is held."""
    ids = list(device_ids)
    async with platform.db.transaction() as session:
        online = (
            await session.execute(select(Device.id).where(Device.id.in_(ids), Device.online))
        ).scalars()
        held = (
            await session.execute(
                select(DeviceSession.device_id).where(DeviceSession.device_id.in_(ids))
            )
        ).scalars()
        assert list(online) == []
        assert list(held) == []


async def check_reconciled(
    platform: Platform,
    clock: FixedClock,
    gateway: Gateway | None,
    fleet: LockFleet,
    commands: dict[str, str],
) -> None:
    """Everything this module checks, once the platform caught up after a fault (``gateway``:
    the in-process gateway, or None for one in another process: the database only)."""
    await settle_commands(platform, clock, commands, SETTLE_S)  # their executions are events
    await wait_all_events_stored(platform, fleet, SETTLE_S)
    await wait_sessions_reconciled(platform, gateway, fleet, SETTLE_S)
    if gateway is not None:
        await gateway.ingest.drain()
    await assert_events_exactly_once(platform, fleet)
    await assert_commands_executed_once(platform, fleet, commands)
