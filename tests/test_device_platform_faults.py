"""Faults while reference locks talk to the real gateway: nothing lost, nothing twice, reconciled.

Each scenario runs real :class:`~anju.device.lock.LockFirmware` instances (each behind its own
TCP proxy, tests/support/lock_fleet.py) against the real gateway and broker, injects a fault in
the middle of a burst of events and commands, and then checks (tests/support/reconcile.py):

* every event a lock durably recorded is stored exactly once, nothing else is stored;
* every command is acknowledged and was executed exactly once by its lock;
* the registry shows each running lock online with the session the lock really holds, and
  everyone offline once the locks and the gateway stopped.

Faults are injected without touching the shared services: brokers are private (a Mosquitto the
test starts, or the embedded broker), PostgreSQL is reached through a proxy the test cuts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from anju.gateway.runner import Gateway
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.settings import Settings
from tests.support.db_outage import (
    DatabaseOutage,
    PostgresOutage,
    SqliteWriteLock,
    postgres_target,
    proxied_url,
    sqlite_file,
)
from tests.support.gateway_env import (
    MosquittoProcess,
    RestartableEmbeddedBroker,
    mosquitto_process,
    running_gateway,
    wait_until,
)
from tests.support.gateway_state import enqueue
from tests.support.lock_fleet import LockFleet
from tests.support.mqtt_device import manufacture_registered
from tests.support.reconcile import (
    assert_all_offline,
    assert_commands_executed_once,
    assert_events_exactly_once,
    settle_commands,
    wait_all_events_stored,
    wait_sessions_reconciled,
)
from tests.support.registry import Made
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.req("R2", "R11", "L13", "L14", "L16", "L17", "R18")]

LOCKS = 3
SETTLE_S = 60.0  # generous: a loaded 2-core machine


@pytest.fixture
async def db_proxy(backend: str, database_url: str) -> AsyncIterator[TcpProxy | None]:
    """PostgreSQL only: the proxy the platform reaches the server through."""
    if backend != "postgres":
        yield None
        return
    async with TcpProxy(*postgres_target(database_url)) as proxy:
        yield proxy


@pytest.fixture
def settings(tmp_path: Path, database_url: str, db_proxy: TcpProxy | None) -> Settings:
    """As in conftest, but PostgreSQL is reached through a proxy the tests can cut."""
    url = database_url if db_proxy is None else proxied_url(database_url, db_proxy)
    return Settings(data_dir=tmp_path / "data", database_url=url)


@pytest.fixture
def db_outage(database_url: str, db_proxy: TcpProxy | None) -> DatabaseOutage:
    if db_proxy is not None:
        return PostgresOutage(db_proxy)
    return SqliteWriteLock(sqlite_file(database_url))


@contextlib.asynccontextmanager
async def fleet_of(
    platform: Platform, clock: FixedClock, tmp_path: Path, broker: tuple[str, int], made: list[Made]
) -> AsyncIterator[LockFleet]:
    fleet = LockFleet(platform, clock, made, tmp_path / "locks", broker)
    await fleet.start()
    try:
        yield fleet
    finally:
        await fleet.stop()


async def burst(
    platform: Platform, fleet: LockFleet, rounds: int, commands: dict[str, str]
) -> None:
    """Events on every lock, two per round (50 ms), and meanwhile a command every fourth round
    for one lock after another (unlock, lock, …) — queued by an operator, independently: a
    command that waits for the database does not hold the locks' events back."""

    async def events() -> None:
        for _ in range(rounds):
            fleet.record(2)
            await asyncio.sleep(0.05)

    async def operator() -> None:
        names = ("unlock", "lock")
        for n in range(rounds // 4):
            lock = fleet[n % len(fleet.locks)]
            while True:
                try:
                    command_id = await enqueue(platform, lock.device_id, names[n % 2])
                    break
                except (DBAPIError, OSError):  # the database is away: try again, as people do
                    await asyncio.sleep(0.5)
            commands[command_id] = lock.device_id
            await asyncio.sleep(0.2)

    await asyncio.gather(events(), operator())


async def check_reconciled(
    platform: Platform,
    clock: FixedClock,
    gateway: Gateway,
    fleet: LockFleet,
    commands: dict[str, str],
) -> None:
    await wait_all_events_stored(platform, fleet, SETTLE_S)
    await settle_commands(platform, clock, commands, SETTLE_S)
    await wait_sessions_reconciled(platform, gateway, fleet, SETTLE_S)
    await gateway.ingest.drain()
    await assert_events_exactly_once(platform, fleet)
    await assert_commands_executed_once(platform, fleet, commands)


# --- 1. broker restart ---------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def restartable_broker(
    kind: str, platform: Platform, tmp_path: Path
) -> AsyncIterator[MosquittoProcess | RestartableEmbeddedBroker]:
    if kind == "mosquitto":
        async with mosquitto_process(platform, tmp_path / "mosquitto") as mosquitto:
            yield mosquitto
        return
    embedded = RestartableEmbeddedBroker(platform)
    await embedded.start()
    try:
        yield embedded
    finally:
        await embedded.stop()


@pytest.mark.parametrize("broker_kind", ["mosquitto", "embedded"])
async def test_broker_restart_mid_burst_loses_and_duplicates_nothing(
    platform: Platform, clock: FixedClock, tmp_path: Path, broker_kind: str
) -> None:
    commands: dict[str, str] = {}
    made = await manufacture_registered(platform, tmp_path, LOCKS)
    async with restartable_broker(broker_kind, platform, tmp_path) as broker:
        address = broker.address
        async with (
            running_gateway(platform, address) as gateway,
            fleet_of(platform, clock, tmp_path, (address.host, address.port), made) as fleet,
        ):
            await wait_until(fleet.all_online, 20)
            load = asyncio.create_task(burst(platform, fleet, 40, commands))
            await wait_until(lambda: gateway.ingest.counters.events_received >= 30, 20)
            await broker.kill()  # mid-burst: the locks and the gateway lose the broker
            await wait_until(lambda: not any(lock.online for lock in fleet), 10)
            fleet.record(3)  # recorded while the broker is down: kept in the locks' buffers
            await broker.start()  # same port: everyone reconnects by themselves
            await load
            await check_reconciled(platform, clock, gateway, fleet, commands)
            assert broker.starts == 2
            assert all(lock.lock.client.stats.sessions >= 2 for lock in fleet)
        await assert_all_offline(platform, [lock.device_id for lock in fleet])


# --- 2. database outage --------------------------------------------------------------------------
async def test_database_outage_mid_burst_loses_and_duplicates_nothing(
    platform: Platform, clock: FixedClock, tmp_path: Path, db_outage: DatabaseOutage
) -> None:
    """PostgreSQL: every connection reset and new ones refused for 3 s. SQLite: another process
    holds the write lock for 3 s. Meanwhile the locks keep reporting and one of them loses its
    network, so it must handshake again while the database is away (its HELLO cannot be
    answered without the root key: it retries afterwards)."""
    commands: dict[str, str] = {}
    made = await manufacture_registered(platform, tmp_path, LOCKS)
    async with mosquitto_process(platform, tmp_path / "mosquitto") as broker:
        address = broker.address
        async with (
            running_gateway(platform, address) as gateway,
            fleet_of(platform, clock, tmp_path, (address.host, address.port), made) as fleet,
        ):
            await wait_until(fleet.all_online, 20)
            counters = gateway.ingest.counters
            load = asyncio.create_task(burst(platform, fleet, 40, commands))
            await wait_until(lambda: counters.events_received >= 30, 20)
            async with db_outage.lasting():
                fleet.cut_network(lambda lock: lock is fleet[0])
                await asyncio.sleep(3.0)  # how long the outage lasts (not an assertion)
                # Nothing is confirmed while nothing can be stored: the locks keep their events.
                assert all(lock.lock.buffer.stats().pending > 0 for lock in fleet)
            await load
            await check_reconciled(platform, clock, gateway, fleet, commands)
            if isinstance(db_outage, PostgresOutage):
                assert counters.store_retries >= 1
                assert db_outage.proxy.counters.refused >= 1
            assert fleet[0].lock.client.stats.sessions >= 2
        await assert_all_offline(platform, [lock.device_id for lock in fleet])


# --- 5. network flaps ----------------------------------------------------------------------------
@pytest.mark.parametrize("broker_kind", ["mosquitto", "embedded"])
async def test_network_flaps_lose_and_duplicate_nothing(
    platform: Platform, clock: FixedClock, tmp_path: Path, broker_kind: str
) -> None:
    """Ten flaps at seeded random moments: each resets the broker connections of a random
    subset of the locks, and every other one also refuses their reconnects for a moment."""
    rng = random.Random(20260101)
    commands: dict[str, str] = {}
    made = await manufacture_registered(platform, tmp_path, LOCKS)
    async with restartable_broker(broker_kind, platform, tmp_path) as broker:
        address = broker.address
        async with (
            running_gateway(platform, address) as gateway,
            fleet_of(platform, clock, tmp_path, (address.host, address.port), made) as fleet,
        ):
            await wait_until(fleet.all_online, 20)
            load = asyncio.create_task(burst(platform, fleet, 80, commands))
            cut = 0
            for flap in range(10):
                await asyncio.sleep(rng.uniform(0.1, 0.6))
                hit = rng.sample(fleet.locks, rng.randint(1, len(fleet.locks)))
                if flap % 2:
                    for lock in hit:
                        lock.proxy.refuse()
                cut += fleet.cut_network(lambda lock: lock in hit)  # noqa: B023
                if flap % 2:
                    await asyncio.sleep(rng.uniform(0.1, 0.4))
                    for lock in hit:
                        lock.proxy.restore()
            await load
            await check_reconciled(platform, clock, gateway, fleet, commands)
            assert cut >= 10  # the flaps did hit open connections
            assert sum(lock.lock.client.stats.sessions for lock in fleet) >= LOCKS + 5
        await assert_all_offline(platform, [lock.device_id for lock in fleet])
