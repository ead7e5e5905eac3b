"""A committed command wakes delivery at once — in this process and, on PostgreSQL, in others.

The gateways here poll every 30 s; each test gets its command to the device in a fraction of
that and checks that no poll (full pass) happened meanwhile, so what delivered it was the
wake-up. Rolled-back commands wake nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from anju.app import create_app
from anju.db import Database
from anju.devices.commands import CommandService
from anju.devices.commands.wakeup import CHANNEL, subscribe
from anju.gateway.client import BrokerAddress
from anju.gateway.command_notices import CommandNotices
from anju.gateway.options import GatewayOptions
from anju.gateway.runner import Gateway
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.settings import Settings
from tests.support.accounts import login_token, make_admin, step_up
from tests.support.gateway_env import (
    embedded_broker,
    private_mosquitto,
    running_gateway,
    wait_until,
)
from tests.support.mqtt_device import Made, TestDevice, manufacture_registered
from tests.support.other_process import run_enqueue_elsewhere
from tests.support.services import POSTGRES_URL

pytestmark = [pytest.mark.slow, pytest.mark.req("R11")]

SLOW_POLL = GatewayOptions(command_poll_seconds=30.0)
SOON = 10.0  # well inside the 30 s poll


async def connected(platform: Platform, gateway: Gateway, made: Made) -> TestDevice:
    dev = TestDevice(made, platform, gateway.client.address)
    await dev.connect()
    await dev.handshake()
    await wait_until(lambda: dev.device_id in gateway.ingest.held_devices())
    return dev


async def settled(gateway: Gateway) -> int:
    """Wait until the gateway listens (PostgreSQL) and has no full pass pending; its count."""
    if gateway.notices.enabled:
        await wait_until(lambda: gateway.notices.server_pid is not None)
    await wait_until(lambda: not gateway.dispatcher.full_pass_due)
    return gateway.dispatcher.full_passes


async def test_a_command_posted_over_http_reaches_the_device_without_waiting_for_the_poll(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    admin = await make_admin(platform, login="sa-a", org="Org A")
    token = await login_token(platform, admin.login)
    await step_up(platform, clock, admin, token)
    (made,) = await manufacture_registered(platform, tmp_path, org_id=admin.org_id)
    transport = httpx.ASGITransport(app=create_app(platform))
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address, SLOW_POLL) as gateway,
        httpx.AsyncClient(transport=transport, base_url="http://anju.test") as client,
    ):
        dev = await connected(platform, gateway, made)
        passes = await settled(gateway)
        response = await client.post(
            f"/api/v1/devices/{made.device_id}/commands",
            json={"name": "unlock"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.text
        command = await dev.receive(within=SOON)
        assert (command["t"], command["id"]) == ("cmd", response.json()["id"])
        assert gateway.dispatcher.full_passes == passes  # woken for this device, not polled
        await dev.close()


async def queue_then_fail(platform: Platform, device_id: str) -> None:
    async with platform.db.transaction() as session:
        await CommandService(platform, session).enqueue("cli", None, device_id, "unlock", {}, 600)
        raise RuntimeError("the change is abandoned")


async def test_only_committed_commands_wake_delivery_once_per_device_and_transaction(
    platform: Platform, tmp_path: Path
) -> None:
    a, b = await manufacture_registered(platform, tmp_path, 2)
    woken: list[Collection[str] | None] = []
    unsubscribe = subscribe(woken.append)
    try:
        with pytest.raises(RuntimeError):
            await queue_then_fail(platform, a.device_id)
        assert woken == []  # rolled back: nothing to deliver, nobody woken
        async with platform.db.transaction() as session:
            svc = CommandService(platform, session)
            await svc.enqueue("cli", None, a.device_id, "unlock", {}, 600)
            await svc.enqueue("cli", None, a.device_id, "lock", {}, 600)
            await svc.enqueue("cli", None, b.device_id, "unlock", {}, 600)
            assert woken == []  # not before the commit
        assert woken == [frozenset({a.device_id, b.device_id})]
    finally:
        unsubscribe()
    async with platform.db.transaction() as session:
        await CommandService(platform, session).enqueue("cli", None, b.device_id, "lock", {}, 600)
    assert len(woken) == 1  # unsubscribed: no longer called


async def test_a_command_queued_by_another_process_wakes_the_gateway(
    platform: Platform, settings: Settings, backend: str, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    # PostgreSQL: the other process's NOTIFY wakes the gateway. SQLite has no NOTIFY: the
    # command is found by the next poll, so that case is shown with a short poll.
    options = SLOW_POLL if backend == "postgres" else GatewayOptions(command_poll_seconds=0.5)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address, options) as gateway,
    ):
        dev = await connected(platform, gateway, made)
        passes = await settled(gateway)
        command_id = await run_enqueue_elsewhere(
            settings.data_dir, settings.resolved_database_url, made.device_id
        )
        command = await dev.receive(within=SOON)
        assert command["id"] == command_id
        if backend == "postgres":
            assert gateway.dispatcher.full_passes == passes
            assert gateway.notices.notices == 1
        else:
            assert gateway.notices.connections == 0  # nothing to listen to on SQLite
        await dev.close()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_the_gateway_listens_again_after_losing_its_database_connection(
    platform: Platform, settings: Settings, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    async with (
        private_mosquitto(platform, tmp_path / "mosquitto") as address,
        running_gateway(platform, BrokerAddress(address.host, address.port, 5), SLOW_POLL) as gw,
    ):
        dev = await connected(platform, gw, made)
        await settled(gw)
        admin = create_async_engine(POSTGRES_URL)
        try:
            async with admin.begin() as conn:
                killed = await conn.scalar(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": gw.notices.server_pid}
                )
            assert killed
        finally:
            await admin.dispose()
        await wait_until(lambda: gw.notices.connections == 2, within=SOON)
        passes = await settled(gw)
        command_id = await run_enqueue_elsewhere(
            settings.data_dir, settings.resolved_database_url, made.device_id
        )
        command = await dev.receive(within=SOON)
        assert command["id"] == command_id
        assert gw.dispatcher.full_passes == passes
        await dev.close()


async def test_stopping_a_gateway_does_not_wait_for_its_poll(platform: Platform) -> None:
    async with embedded_broker(platform) as broker:
        gateway = Gateway(platform, broker.address, SLOW_POLL)
        await gateway.start()
        await asyncio.sleep(0.2)  # the dispatcher is asleep until its next 30 s pass
        await asyncio.wait_for(gateway.stop(), SOON)


async def test_a_gateway_stops_promptly_while_its_listener_cannot_reach_the_database() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the connection, never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/unreachable")
    notices = CommandNotices(db, lambda _ids: None)
    stop = asyncio.Event()
    try:
        listening = asyncio.create_task(notices.run(stop))
        await asyncio.sleep(0.5)  # connecting, and hanging there
        assert not listening.done()
        stop.set()
        await asyncio.wait_for(listening, SOON)  # not the driver's 60 s connect timeout
        assert notices.connections == 0
    finally:
        server.close()
        await db.dispose()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_only_commands_for_devices_held_elsewhere_are_announced_to_other_processes(
    platform: Platform, tmp_path: Path
) -> None:
    held, elsewhere = await manufacture_registered(platform, tmp_path, 2)
    heard: list[str] = []
    listener = await asyncpg.connect(POSTGRES_URL.replace("postgresql+asyncpg", "postgresql"))
    await listener.add_listener(CHANNEL, lambda *args: heard.append(args[-1]))
    try:
        async with (
            embedded_broker(platform) as broker,
            running_gateway(platform, broker.address, SLOW_POLL) as gateway,
        ):
            dev = await connected(platform, gateway, held)
            await settled(gateway)
            for made in (held, elsewhere):
                async with platform.db.transaction() as session:
                    await CommandService(platform, session).enqueue(
                        "cli", None, made.device_id, "unlock", {}, 600
                    )
            # The held device is served by this process without a notice …
            assert (await dev.receive(within=SOON))["t"] == "cmd"
            # … the other one's command is announced, for whichever process will hold it.
            await wait_until(lambda: any(p.endswith(elsewhere.device_id) for p in heard))
            assert not any(p.endswith(held.device_id) for p in heard)
            await dev.close()
    finally:
        await listener.close()


async def queue(platform: Platform, device_id: str, name: str = "unlock") -> str:
    async with platform.db.transaction() as session:
        command = await CommandService(platform, session).enqueue(
            "cli", None, device_id, name, {}, 600
        )
    return command.id


async def test_a_slow_delivery_holds_up_neither_other_devices_nor_its_own_next_command(
    platform: Platform, tmp_path: Path
) -> None:
    slow, other = await manufacture_registered(platform, tmp_path, 2)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address, SLOW_POLL) as gateway,
    ):
        dev_slow = await connected(platform, gateway, slow)
        dev_other = await connected(platform, gateway, other)
        passes = await settled(gateway)
        dispatcher = gateway.dispatcher
        deliver = dispatcher._deliver
        release = asyncio.Event()
        held_up = asyncio.Event()

        async def stuck_after_sending(device_id: str, *, new_session: bool) -> int:
            sent = await deliver(device_id, new_session=new_session)
            if device_id == slow.device_id and not release.is_set():
                held_up.set()
                await release.wait()  # a delivery that takes its time (a slow database, say)
            return sent

        dispatcher._deliver = stuck_after_sending  # type: ignore[method-assign]
        try:
            first = await queue(platform, slow.device_id)
            assert (await dev_slow.receive(within=SOON))["id"] == first
            await asyncio.wait_for(held_up.wait(), SOON)
            # Another device's command goes out while the slow delivery is still running …
            other_id = await queue(platform, other.device_id)
            assert (await dev_other.receive(within=SOON))["id"] == other_id
            # … and a second command for the slow device, queued meanwhile, right after it.
            second = await queue(platform, slow.device_id, "lock")
            await asyncio.sleep(0.3)
            assert dev_slow.downlink.empty()  # one delivery per device at a time: not yet
        finally:
            release.set()
        assert (await dev_slow.receive(within=SOON))["id"] == second
        assert dispatcher.full_passes == passes  # all of it woken by commits, not polled
        await dev_slow.close()
        await dev_other.close()
