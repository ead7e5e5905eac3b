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
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from anju.devices.ca import ca_public_key, issue_device_certificate
from anju.devices.commands import CommandStatus
from anju.devices.lifecycle import Status
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.certificates import Certificate
from anju.protocol.frames import MAX_FRAME_BYTES
from anju.protocol.handshake import DeviceHandshake
from anju.protocol.topics import up_topic
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
    embedded_broker,
    mosquitto_process,
    running_gateway,
    wait_until,
)
from tests.support.gateway_state import enqueue, events_of, now_ms, now_s, security_flags
from tests.support.lock_fleet import burst, running_fleet
from tests.support.mqtt_device import TestDevice, event, manufacture_registered, set_status
from tests.support.power_loss import PowerLoss, power_cut_at
from tests.support.reconcile import (
    SETTLE_S,
    assert_all_offline,
    assert_commands_executed_once,
    assert_events_exactly_once,
    check_reconciled,
    command_rows,
    execution_events,
    settle_commands,
    wait_all_events_stored,
    wait_sessions_reconciled,
)
from tests.support.registry import Made, audit_entries, device_row
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

LOCKS = 3


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


# --- broker restart -------------------------------------------------------------------------------
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
@pytest.mark.req("R2", "R11", "L13", "L17")
async def test_broker_restart_mid_burst_loses_and_duplicates_nothing(
    platform: Platform, clock: FixedClock, tmp_path: Path, broker_kind: str
) -> None:
    commands: dict[str, str] = {}
    made = await manufacture_registered(platform, tmp_path, LOCKS)
    async with restartable_broker(broker_kind, platform, tmp_path) as broker:
        address = broker.address
        async with (
            running_gateway(platform, address) as gateway,
            running_fleet(platform, clock, tmp_path, (address.host, address.port), made) as fleet,
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


# --- database outage ------------------------------------------------------------------------------
@pytest.mark.req("R11", "L13", "L17")
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
            running_fleet(platform, clock, tmp_path, (address.host, address.port), made) as fleet,
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


# --- network flaps --------------------------------------------------------------------------------
@pytest.mark.parametrize("broker_kind", ["mosquitto", "embedded"])
@pytest.mark.req("R2", "R11", "L13", "L17")
async def test_network_flaps_lose_and_duplicate_nothing(
    platform: Platform, clock: FixedClock, tmp_path: Path, broker_kind: str
) -> None:
    """Ten flaps at seeded random moments: each resets the broker connections of a random
    subset of the locks that are connected then, and every other one also refuses their
    reconnects for a moment."""
    rng = random.Random(20260101)
    commands: dict[str, str] = {}
    made = await manufacture_registered(platform, tmp_path, LOCKS)
    async with restartable_broker(broker_kind, platform, tmp_path) as broker:
        address = broker.address
        async with (
            running_gateway(platform, address) as gateway,
            running_fleet(platform, clock, tmp_path, (address.host, address.port), made) as fleet,
        ):
            await wait_until(fleet.all_online, 20)
            load = asyncio.create_task(burst(platform, fleet, 80, commands))
            cut = 0
            for flap in range(10):
                await asyncio.sleep(rng.uniform(0.1, 0.6))
                await wait_until(lambda: any(lock.online for lock in fleet), 20)
                online = [lock for lock in fleet if lock.online]
                hit = rng.sample(online, rng.randint(1, len(online)))
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
            assert cut >= 10  # every flap hit at least one live session...
            assert sum(lock.lock.client.stats.sessions for lock in fleet) >= LOCKS + 10  # ...anew
        await assert_all_offline(platform, [lock.device_id for lock in fleet])


# --- device power loss during a write -------------------------------------------------------------
def files_of(directory: Path, prefix: str) -> Callable[[Path], bool]:
    """Matches the files ``directory/prefix*`` (one store of the firmware)."""
    return lambda path: path.parent == directory and path.name.startswith(prefix)


#: Where the power fails: (store files, index of the cut call among the calls on them).
#: A slot write is open, write, fsync, close; an event append is open, ftruncate, lseek, write.
#: A command's three firmware-store writes: "executing" (W1), the bolt (W2), the result (W3).
POWER_CUTS = {
    "event-append": ("events/events.log", 3),  # the append's write, half done
    "upload-cursor": ("events/events-meta.", 1),  # the cursor after an evt_ack, half written
    "command-before-acting": ("firmware.", 1),  # W1 half written: the lock has not acted
    "command-after-acting": ("firmware.", 9),  # W3 half written: it acted, result not saved
}


@pytest.mark.parametrize("where", list(POWER_CUTS))
@pytest.mark.req("L13", "R19", "R2", "L17")
async def test_power_loss_during_a_firmware_write_then_restart(
    platform: Platform, clock: FixedClock, tmp_path: Path, where: str
) -> None:
    """The lock's power fails in the middle of one of its own writes (the write is torn: half
    its bytes reach the file); the firmware restarts from the same data directory. It resumes,
    uploads everything the platform has not acknowledged, and never executes a command twice.
    A second lock runs throughout and is not disturbed."""
    made = await manufacture_registered(platform, tmp_path, 2)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
        running_fleet(platform, clock, tmp_path, (broker.host, broker.port), made) as fleet,
    ):
        await wait_until(fleet.all_online, 20)
        victim = fleet[0]  # fleet[1] runs on undisturbed
        store, call = POWER_CUTS[where]
        directory = victim.data_dir / Path(store).parent
        match = files_of(directory, Path(store).name)
        commands: dict[str, str] = {}
        victim.lock.set_locked(True, by="keypad")  # its firmware store exists from now on
        fleet.record(3)
        await wait_all_events_stored(platform, fleet, SETTLE_S)
        if where in ("event-append", "upload-cursor"):
            victim.proxy.refuse()  # offline: events stay pending on the lock
            victim.proxy.cut()
            await wait_until(lambda: not victim.online, 10)
            for n in range(10):
                victim.lock.record_event("door.opened", {"offline": n})
        duplicates_before = gateway.ingest.counters.events_duplicate

        with power_cut_at(call, only=match, on_cut=lambda: fleet.cut_power(victim)) as cut:
            if where == "event-append":
                with pytest.raises(PowerLoss):
                    victim.lock.record_event("door.opened", {"torn": True})
            elif where == "upload-cursor":
                victim.proxy.restore()  # back online: upload, evt_ack, cursor write — cut
            else:
                command_id = await enqueue(platform, victim.device_id, "unlock")
                commands[command_id] = victim.device_id
            await wait_until(lambda: cut.fired, 20)
        assert cut.path is not None
        assert match(cut.path)
        assert cut.calls[call] == "write"
        await fleet.power_off(victim)

        await fleet.power_on(victim)  # power returns: the same data directory and SE
        if where == "event-append":
            assert victim.lock.buffer.stats().discarded_bytes > 0  # the torn frame, cut off
        fleet.record(2)
        await settle_commands(platform, clock, commands, SETTLE_S)
        await wait_all_events_stored(platform, fleet, SETTLE_S)
        await wait_sessions_reconciled(platform, gateway, fleet, SETTLE_S)
        await gateway.ingest.drain()
        await assert_events_exactly_once(platform, fleet)
        if where == "upload-cursor":
            # The cursor fell back: the acknowledged batch was sent again and stored once.
            assert gateway.ingest.counters.events_duplicate >= duplicates_before + 10
        if where == "command-after-acting":
            # It unlocked, but the result never reached flash: after the restart the lock
            # cannot tell whether it acted, says so, and does not act again.
            (row,) = await command_rows(platform, commands)
            assert (row.status, row.result_code) == (CommandStatus.FAILED, "interrupted")
            assert victim.executed == 1
            assert victim.lock.locked is False  # the bolt state (W2) survived
            assert victim.lock.stats.commands_redelivered == 1
            assert await execution_events(platform, victim.device_id, row.id) == 1
        else:
            await assert_commands_executed_once(platform, fleet, commands)
    await assert_all_offline(platform, [lock.device_id for lock in fleet])


# --- bad input from one device, everyone else served ----------------------------------------------
@pytest.mark.req("L16", "L17", "R16", "R15", "R11")
async def test_a_flood_of_bad_frames_from_one_device_leaves_everyone_else_served(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    """Through a real Mosquitto, device B floods its own topics — junk, oversized frames,
    replays, tampered frames, forged HELLOs, HELLOs with an expired certificate — and device C,
    revoked after the broker's password file was written (the operator has not regenerated it
    yet), keeps trying to handshake. Meanwhile a real lock's events and commands flow. Every bad
    frame is refused and counted, B and C are flagged, and the lock's traffic completes intact."""
    good, bad, revoked = await manufacture_registered(platform, tmp_path, 3)
    commands: dict[str, str] = {}
    async with mosquitto_process(platform, tmp_path / "mosquitto") as broker:
        await set_status(platform, revoked.device_id, Status.REVOKED)  # files still admit it
        address = broker.address
        async with (
            running_gateway(platform, address) as gateway,
            running_fleet(platform, clock, tmp_path, (address.host, address.port), [good]) as fleet,
        ):
            counters = gateway.ingest.counters
            await wait_until(fleet.all_online, 20)
            b, c = TestDevice(bad, platform, address), TestDevice(revoked, platform, address)
            await b.connect()
            await c.connect()
            await b.handshake()
            await wait_until(lambda: bad.device_id in gateway.ingest.held_devices(), 10)
            ca = ca_public_key(platform.keys)
            expired = issue_device_certificate(
                platform.keys,
                device_id=bad.device_id,
                se_id=bad.se.se_id,
                product="lock-x1",
                public_key=bad.se.public_key,
                now=now_s(clock) - 11 * 365 * 86_400,  # ten-year validity, over a year ago
            )

            def hello(made: Made, certificate: Certificate, *, forge: bool = False) -> bytes:
                frame = bytearray(
                    DeviceHandshake(
                        made.device_id, certificate, made.se, ca, now_ms=lambda: now_ms(clock)
                    ).hello()
                )
                if forge:
                    frame[-5] ^= 0x01  # inside the signature
                return bytes(frame)

            b_real = [b.send(event(f"b-{i}", at=now_ms(clock))) for i in range(3)]
            load = asyncio.create_task(burst(platform, fleet, 30, commands))
            for i in range(12):
                tampered = bytearray(b.channel.seal(event(f"t-{i}", at=now_ms(clock))))  # type: ignore[union-attr]
                tampered[-1] ^= 0x55
                for topic, payload in (
                    (up_topic(bad.device_id), b"\x01\x7f" + bytes(i)),  # unknown frame type
                    (b.data_topic, b"\x01\x10" + bytes(20)),  # DATA too short to parse
                    (b.data_topic, b_real[i % len(b_real)]),  # replayed
                    (b.data_topic, bytes(tampered)),  # tampered in transit
                    (up_topic(bad.device_id), hello(bad, bad.certificate, forge=True)),
                    (up_topic(bad.device_id), hello(bad, expired)),
                ):
                    b.publish(topic, payload)
                if i % 4 == 0:
                    b.publish(up_topic(bad.device_id), b"\x01\x01" + bytes(MAX_FRAME_BYTES + 10))
                c.publish(up_topic(revoked.device_id), hello(revoked, revoked.certificate))
                await asyncio.sleep(0.05)
            await load
            await check_reconciled(platform, clock, gateway, fleet, commands)
            await wait_until(
                lambda: (
                    min(counters.rejected[r] for r in ("device_rejected", "cert_expired")) >= 12
                ),
                30,
            )
            await gateway.ingest.drain()
            rejected = counters.rejected
            assert rejected["unknown_frame_type"] >= 12
            assert rejected["frame_too_large"] == 3
            assert rejected["replay"] + counters.duplicates >= 12
            assert rejected["bad_tag"] == 12
            assert rejected["bad_signature"] + rejected["frame_malformed"] >= 12
            assert rejected["cert_expired"] == 12
            assert rejected["device_rejected"] == 12
            assert rejected["internal_error"] == 0
            assert [e.event_id for e in await events_of(platform, bad.device_id)] == [
                "b-0",
                "b-1",
                "b-2",
            ]
            assert fleet[0].lock.client.stats.sessions == 1  # never disturbed
            await b.close()
            await c.close()
        flags = await security_flags(platform)
        assert set(flags) == {bad.device_id, revoked.device_id}
        assert flags[bad.device_id] >= 5  # ≥ 60 failures: one alarm per 10
        assert flags[revoked.device_id] == 1
        entries = await audit_entries(platform, "devices.security.repeated_failures")
        assert {e.target for e in entries} == {
            f"device:{bad.device_id}",
            f"device:{revoked.device_id}",
        }
        assert good.device_id not in flags


@pytest.mark.req("R11", "L17")
async def test_a_session_confirmed_while_the_database_is_away_is_reconciled(
    platform: Platform,
    clock: FixedClock,
    tmp_path: Path,
    db_outage: DatabaseOutage,
) -> None:
    """The database goes away (for 1 s) at the moment the gateway records a session it has
    just confirmed — the lock's HELLO was answered a moment before. Afterwards the lock must be
    served as usual: online in the registry with that session (or a newer one), its commands
    delivered, its events filed under its organisation."""
    (made,) = await manufacture_registered(platform, tmp_path, 1)
    async with mosquitto_process(platform, tmp_path / "mosquitto") as broker:
        address = broker.address
        async with (
            running_gateway(platform, address) as gateway,
            running_fleet(platform, clock, tmp_path, (address.host, address.port), [made]) as fleet,
        ):
            lock = fleet[0]
            await wait_sessions_reconciled(platform, gateway, fleet, SETTLE_S)
            ingest = gateway.ingest
            confirm = ingest._session_confirmed
            hit = asyncio.Event()

            async def outage_for(seconds: float) -> None:
                await asyncio.sleep(seconds)
                await db_outage.end()

            async def confirm_during_outage(device_id: str, session_id: bytes) -> None:
                del ingest._session_confirmed  # only this once
                await db_outage.begin()
                restored = asyncio.create_task(outage_for(1.0))
                try:
                    await confirm(device_id, session_id)
                finally:
                    await restored
                    hit.set()

            ingest._session_confirmed = confirm_during_outage  # type: ignore[method-assign]
            lock.proxy.cut()  # the lock reconnects: HELLO answered, CONFIRM recorded — hit
            await asyncio.wait_for(hit.wait(), 20)
            command_id = await enqueue(platform, lock.device_id, "unlock")
            fleet.record(3)
            await wait_sessions_reconciled(platform, gateway, fleet, 20)
            await settle_commands(platform, clock, [command_id], 20)
            await wait_all_events_stored(platform, fleet, 20)
            await assert_events_exactly_once(platform, fleet)
            await assert_commands_executed_once(platform, fleet, {command_id: lock.device_id})
            device = await device_row(platform, lock.device_id)
            assert {e.org_id for e in await events_of(platform, lock.device_id)} == {device.org_id}
