"""The reference lock firmware against the real platform gateway (not a stand-in).

Factory record → registration → the firmware connects through the embedded broker with its SE's
credentials, completes the handshake, reports its state, uploads events and executes a queued
command — what `anju serve` + `anju sim` do, on both database backends.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from anju.devices.command_models import DeviceCommand
from anju.devices.commands import CommandStatus
from anju.devices.models import Device
from anju.gateway.models import DeviceEvent
from anju.gateway.options import GatewayOptions
from anju.gateway.runner import Gateway
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.device_harness import running
from tests.support.gateway_env import embedded_broker, running_gateway, wait_until
from tests.support.gateway_state import enqueue
from tests.support.mqtt_device import manufacture_registered
from tests.support.online_lock import lock_online, reference_lock

pytestmark = pytest.mark.req("R2", "R11", "L14", "L16", "L17", "R18")


async def _poll(platform: Platform, check: object, within: float = 15.0) -> None:
    async def ok() -> bool:
        async with platform.db.transaction() as session:
            return bool(await check(session))  # type: ignore[operator]

    async with asyncio.timeout(within):
        while not await ok():  # noqa: ASYNC110 - the state lives in the database
            await asyncio.sleep(0.1)


async def test_reference_firmware_round_trip_through_the_real_gateway(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    async with lock_online(platform, made, tmp_path / "firmware", clock) as (lock, _gateway):
        lock.record_event("door.opened", {"by": "keypad"})
        lock.record_event("door.closed", {"by": "keypad"})

        async def stored(session: object) -> bool:
            rows = await session.execute(  # type: ignore[attr-defined]
                select(DeviceEvent.kind).where(DeviceEvent.device_id == made.device_id)
            )
            return sorted(rows.scalars()) == ["door.closed", "door.opened"]

        await _poll(platform, stored)

        async def state_recorded(session: object) -> bool:
            device = await session.get(Device, made.device_id)  # type: ignore[attr-defined]
            return device is not None and device.firmware_version is not None

        await _poll(platform, state_recorded)

        command_id = await enqueue(platform, made.device_id, "unlock")

        async def acked(session: object) -> bool:
            row = await session.get(DeviceCommand, command_id)  # type: ignore[attr-defined]
            return row is not None and row.status == CommandStatus.ACKED

        await _poll(platform, acked)
        assert lock.locked is False
        assert lock.stats.commands_executed == 1
        # The platform acknowledged what it stored: nothing is left to upload on the lock.
        await wait_until(lambda: lock.buffer.stats().pending == 0)

    async with platform.db.transaction() as session:
        device = await session.get(Device, made.device_id)
        assert device is not None
        assert device.battery_pct == lock.battery
        assert device.firmware_version == lock.config.firmware
        assert '"locked":false' in device.reported.replace(" ", "")


async def _event_ids(platform: Platform, device_id: str) -> list[str]:
    async with platform.db.transaction() as session:
        rows = await session.execute(
            select(DeviceEvent.event_id).where(DeviceEvent.device_id == device_id)
        )
        return list(rows.scalars())


async def test_a_killed_gateway_loses_no_event_and_its_successor_resets_the_session_at_once(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    """kill -9 of the gateway with received but unstored events: the lock still holds them
    (no evt_ack came), the next process of that instance RESETs the orphaned session at
    start-up, the lock handshakes again at once and resends; each event is stored once."""
    (made,) = await manufacture_registered(platform, tmp_path)
    slow = GatewayOptions(batch_max_delay_seconds=3600.0)  # received events wait in memory
    async with embedded_broker(platform) as broker:
        lock = reference_lock(platform, made, tmp_path / "firmware", clock, broker.address)
        async with running(lock):
            first = Gateway(platform, broker.address, slow)
            await first.start()
            await wait_until(lambda: made.device_id in first.ingest.held_devices(), 15.0)
            ids = [lock.record_event("door.opened", {"n": n}) for n in range(5)]
            await wait_until(lambda: first.ingest.counters.events_received == 5)
            await first.abort()  # killed: nothing stored, no evt_ack, session row left behind
            assert await _event_ids(platform, made.device_id) == []
            assert lock.buffer.stats().pending == 5
            async with running_gateway(platform, broker.address) as second:
                assert second.ingest.counters.resets_sent == 1
                await wait_until(lambda: lock.buffer.stats().pending == 0, 15.0)
                assert lock.client.stats.resets == 1  # not the 900 s silence rekey
                assert made.device_id in second.ingest.held_devices()
    stored = await _event_ids(platform, made.device_id)
    assert sorted(stored) == sorted(ids)  # all of them, once each
