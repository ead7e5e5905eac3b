"""Mosquitto: the generated files on a private broker, and shared subscriptions on the system one.

The password hashes are checked against the real ``mosquitto_passwd``; the configuration, password
file and ACL against a real ``mosquitto -c`` started by the test on a free loopback port.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from anju.devices.lifecycle import Status
from anju.gateway.client import BrokerAddress
from anju.gateway.models import DeviceEvent, DeviceSession
from anju.gateway.mosquitto import (
    ACL_FILE,
    PASSWORD_FILE,
    password_hash,
    password_matches,
    write_mosquitto_files,
)
from anju.gateway.options import GatewayOptions
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.topics import down_topic, session_up_topic, up_topic
from tests.support.gateway_env import private_mosquitto, running_gateway, wait_until
from tests.support.gateway_state import enqueue, events_of, now_ms
from tests.support.mqtt_device import (
    TestDevice,
    event,
    manufacture_registered,
    mqtt_password_of,
    set_status,
)
from tests.support.services import (
    MOSQUITTO_HOST,
    MOSQUITTO_PORT,
    require_service,
    tcp_reachable,
)

pytestmark = pytest.mark.slow
REFUSED = r"(?i)connect|refused|auth|not authori[sz]ed|5"


@pytest.mark.req("R16", "L16")
def test_password_hashes_are_mosquittos_pbkdf2_sha512_format(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    require_service("mosquitto_passwd", tool is not None)
    assert tool is not None
    file = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", str(file), "dev", "s3cret-Pass"], check=True)
    theirs = file.read_text().strip().split(":", 1)[1]
    salt = __import__("base64").b64decode(theirs.split("$")[3])
    assert password_hash("s3cret-Pass", salt=salt) == theirs  # byte for byte the same entry
    assert password_matches("s3cret-Pass", theirs)
    assert not password_matches("s3cret-pass", theirs)
    ours = password_hash("s3cret-Pass")
    assert ours.startswith("$7$101$")
    assert ours != password_hash("s3cret-Pass")  # fresh salt each time
    assert password_matches("s3cret-Pass", ours)


@pytest.mark.req("R16", "L16", "R15")
async def test_generated_mosquitto_files_authenticate_and_enforce_the_acl(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    a, b, revoked = await manufacture_registered(platform, tmp_path, 3)
    await set_status(platform, revoked.device_id, Status.REVOKED)
    files = await write_mosquitto_files(platform, tmp_path / "check")
    users = [line.split(":", 1)[0] for line in files.passwords.read_text().splitlines()]
    assert users == ["anju-gateway", *sorted([a.device_id, b.device_id])]  # no revoked device
    assert mqtt_password_of(a) not in files.passwords.read_text()  # only hashes are stored
    assert oct(files.passwords.stat().st_mode & 0o777) == "0o600"
    assert "pattern write anju/v1/dev/%u/up/+" in (tmp_path / "check" / ACL_FILE).read_text()
    assert (tmp_path / "check" / PASSWORD_FILE).exists()

    async with (
        private_mosquitto(platform, tmp_path / "mosquitto") as address,
        running_gateway(platform, address) as gateway,
    ):
        ingest = gateway.ingest
        v311 = BrokerAddress(address.host, address.port, version=3)
        with pytest.raises(Exception, match=REFUSED):
            await TestDevice(a, platform, v311).connect(password="0" * 64)
        with pytest.raises(Exception, match=REFUSED):
            await TestDevice(revoked, platform, v311).connect()
        dev_a = TestDevice(a, platform, v311)
        await dev_a.connect()
        assert dev_a.granted == 1
        dev_b = TestDevice(b, platform, v311)
        await dev_b.connect()
        # Mosquitto grants MQTT 3.1.1 subscriptions the ACL denies but never delivers on them:
        # A, subscribed to B's downlink and to every uplink, receives nothing of either.
        await dev_a.subscribe(down_topic(b.device_id))
        await dev_a.subscribe("anju/v1/dev/+/up/#")
        gateway.publish(down_topic(b.device_id), b"for B only")
        assert await asyncio.wait_for(dev_b.downlink.get(), 5) == b"for B only"  # control
        dev_b.publish(up_topic(b.device_id), b"\x01\x7d")
        await wait_until(lambda: ingest.counters.messages == 1)
        dev_a.publish(up_topic(b.device_id), b"\x01\x7f")  # dropped by the broker
        dev_a.publish(session_up_topic(b.device_id, 0), b"\x01\x7f")  # dropped too
        dev_a.publish(up_topic(a.device_id), b"\x01\x7e")  # its own: reaches the gateway
        await wait_until(lambda: ingest.counters.messages == 2)
        await asyncio.sleep(0.3)
        assert ingest.counters.messages == 2
        assert ingest.counters.rejected["unknown_frame_type"] == 2
        assert dev_a.downlink.empty()

        # The whole flow through Mosquitto (MQTT 5 shared subscription on the gateway side).
        await dev_a.handshake()
        await wait_until(lambda: a.device_id in ingest.held_devices())
        dev_a.send(event("m-1", at=now_ms(clock)))
        dev_a.send(event("m-1", at=now_ms(clock)))
        dev_a.send(event("m-2", at=now_ms(clock)))
        command_id = await enqueue(platform, a.device_id)
        assert (await dev_a.receive())["id"] == command_id
        dev_a.send({"t": "ack", "id": command_id, "ok": True, "code": None})
        await wait_until(lambda: ingest.counters.acks == 1)
        await ingest.drain()
        assert [e.event_id for e in await events_of(platform, a.device_id)] == ["m-1", "m-2"]
        await dev_a.close()
        await dev_b.close()


@pytest.mark.req("R16", "L16")
async def test_shared_subscription_splits_hellos_between_gateway_processes(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    require_service("Mosquitto", tcp_reachable(MOSQUITTO_HOST, MOSQUITTO_PORT))
    made = await manufacture_registered(platform, tmp_path, 8)
    system = BrokerAddress(MOSQUITTO_HOST, MOSQUITTO_PORT, version=5)
    group = f"anju-test-{secrets.token_hex(4)}"  # other runs on this broker use other groups
    first = secrets.randbelow(0xF000) + 0x100
    options = [GatewayOptions(instance=first), GatewayOptions(instance=first + 1)]
    async with (
        running_gateway(platform, system, options[0], share_group=group) as g1,
        running_gateway(platform, system, options[1], share_group=group) as g2,
    ):
        devices = [TestDevice(m, platform, system) for m in made]
        for dev in devices:
            await dev.connect()
            await dev.handshake()
        await wait_until(lambda: len(g1.ingest.held_devices()) + len(g2.ingest.held_devices()) == 8)
        # Each HELLO was answered exactly once, by one of the two processes (the system broker
        # may carry other runs' HELLOs too: those fail the CA check and are not counted here).
        assert g1.ingest.counters.handshakes + g2.ingest.counters.handshakes == 8
        assert g1.ingest.held_devices()
        assert g2.ingest.held_devices()
        assert not set(g1.ingest.held_devices()) & set(g2.ingest.held_devices())
        await asyncio.sleep(0.3)
        assert all(dev.downlink.empty() for dev in devices)  # no second WELCOME
        by_instance = {first: g1, first + 1: g2}
        for dev in devices:
            holder = by_instance[dev.instance]
            assert holder.ingest.channel(dev.device_id) is not None
            dev.send(event(f"hello-{dev.device_id[:6]}", at=now_ms(clock)))
        await wait_until(
            lambda: g1.ingest.counters.events_received + g2.ingest.counters.events_received >= 8
        )
        await g1.ingest.drain()
        await g2.ingest.drain()
        async with platform.db.transaction() as session:
            rows = (await session.execute(select(DeviceSession))).scalars().all()
            stored = (await session.execute(select(DeviceEvent))).scalars().all()
        assert {r.device_id: r.instance for r in rows} == {d.device_id: d.instance for d in devices}
        assert sorted(e.device_id for e in stored) == sorted(d.device_id for d in devices)
        for dev in devices:
            await dev.close()


@pytest.mark.req("R16")
async def test_cli_writes_the_mosquitto_files(platform: Platform, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from anju.cli.gateway import app

    (made,) = await manufacture_registered(platform, tmp_path)
    out = tmp_path / "etc"
    env = {"ANJU_DATABASE_URL": platform.settings.resolved_database_url}
    argv = ["mosquitto-config", "--out", str(out), "--data-dir", str(platform.settings.data_dir)]
    argv += ["--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem")]
    result = await asyncio.to_thread(CliRunner().invoke, app, argv, env=env)
    assert result.exit_code == 0, result.output
    assert "mosquitto -c" in result.output
    conf = (out / "anju.conf").read_text()
    assert "allow_anonymous false" in conf
    assert "set_tcp_nodelay true" in conf  # commands and acks must not wait for Nagle
    assert "listener 8883" in conf
    assert f"certfile {(tmp_path / 'c.pem').resolve()}" in conf
    users = [line.split(":")[0] for line in (out / PASSWORD_FILE).read_text().splitlines()]
    assert users == ["anju-gateway", made.device_id]
    half = await asyncio.to_thread(
        CliRunner().invoke, app, [*argv[:5], "--tls-cert", "x.pem"], env=env
    )
    assert half.exit_code != 0
