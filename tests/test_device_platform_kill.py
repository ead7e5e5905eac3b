"""The platform process is killed (SIGKILL) in the middle of a burst and started again.

``anju serve`` runs as a child process on the test's database and keyring, with a private
Mosquitto as its broker; reference locks (tests/support/lock_fleet.py) report events and
execute commands through it. The child is killed with SIGKILL while events are in flight —
received but not yet stored, stored but not yet acknowledged — and while commands are sent but
not acknowledged; then a new process of the same gateway instance starts on the same database.

Nothing is lost: a lock forgets an event only after the platform's ``evt_ack`` (sent after the
commit), so whatever the dead process held is sent again. Nothing is stored twice: events are
unique per (device, event id). The new process RESETs the sessions the dead one left in
``device_sessions``, so the locks handshake again at once (not after the 900 s silence rekey),
get their unacknowledged commands again (executed once: the lock remembers them), and the
registry shows them online with their new sessions.

The child uses the real clock, so this module's ``clock`` does too (tests/support/clocks.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.clocks import WallClock
from tests.support.gateway_env import mosquitto_process, wait_until
from tests.support.lock_fleet import burst, running_fleet
from tests.support.mqtt_device import manufacture_registered
from tests.support.platform_process import ServeProcess
from tests.support.reconcile import (
    assert_all_offline,
    check_reconciled,
    eventually,
    stored_events,
)

pytestmark = [pytest.mark.slow, pytest.mark.req("R2", "R11", "L13", "L17")]


@pytest.fixture
def clock() -> FixedClock:
    return WallClock()


async def test_platform_killed_mid_burst_loses_and_duplicates_nothing(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    commands: dict[str, str] = {}
    made = await manufacture_registered(platform, tmp_path, 3)
    device_ids = [m.device_id for m in made]
    async with mosquitto_process(platform, tmp_path / "mosquitto") as broker:
        serve = ServeProcess(platform.settings, f"mqtt://127.0.0.1:{broker.port}")
        await serve.start()
        try:
            async with running_fleet(
                platform, clock, tmp_path, ("127.0.0.1", broker.port), made
            ) as fleet:
                await wait_until(fleet.all_online, 30)
                load = asyncio.create_task(burst(platform, fleet, 60, commands))

                async def some_stored() -> bool:
                    return len(await stored_events(platform, device_ids)) >= 30

                await eventually(some_stored, 30, "the burst reaches the database")
                await serve.kill()  # mid-burst
                sessions_before = [lock.lock.client.session_id for lock in fleet]
                await asyncio.sleep(0.5)  # the locks go on recording with nobody answering
                await serve.start()  # same instance, same database
                await load
                await check_reconciled(platform, clock, None, fleet, commands)
                for lock, before in zip(fleet, sessions_before, strict=True):
                    assert lock.lock.client.session_id != before  # a new session each
                    assert lock.lock.client.stats.resets >= 1  # told at once by the RESET
                # What the dead process had received but not acknowledged was sent again.
                assert sum(lock.lock.stats.events_resent for lock in fleet) >= 1
        finally:
            await serve.stop()
    assert serve.starts == 2
    await assert_all_offline(platform, device_ids)
