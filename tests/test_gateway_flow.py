"""The gateway end to end on the embedded broker, on both database backends.

A device (software SE + the protocol's device side over gmqtt) connects, completes the
handshake, sends events (duplicates stored once), a state report, receives a queued command and
acks it; refused frames are counted, repeated failures raise a security event, and a restart of
the gateway loses and duplicates nothing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from anju.audit.models import AuditEntry
from anju.devices.ca import GATEWAY_SIGNER, ca_public_key
from anju.devices.commands import CommandStatus
from anju.devices.lifecycle import Status
from anju.gateway.models import DeviceEvent, DeviceSecurityFlag
from anju.gateway.options import GatewayOptions
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.frames import MAX_FRAME_BYTES
from anju.protocol.handshake import DeviceHandshake
from anju.protocol.reset import check_reset
from anju.protocol.topics import session_up_topic, up_topic
from tests.support.gateway_env import embedded_broker, running_gateway, wait_until
from tests.support.gateway_state import command_row, enqueue, events_of, now_ms, session_row
from tests.support.mqtt_device import TestDevice, event, manufacture_registered, set_status
from tests.support.registry import device_row

pytestmark = pytest.mark.slow
REFUSED = r"(?i)connect|refused|auth|5"


@pytest.mark.req("L16", "L14", "R15", "R18", "L17", "L13")
async def test_device_handshake_events_state_and_command_round_trip(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
    ):
        dev = TestDevice(made, platform, broker.address)
        await dev.connect()
        assert dev.granted == 1  # QoS 1 on its own down topic
        channel = await dev.handshake()
        assert channel.session_id[:2] == b"\x00\x00"  # instance 0 holds the session
        await wait_until(lambda: made.device_id in gateway.ingest.held_devices())
        row = await session_row(platform, made.device_id)
        assert row is not None
        assert (row.instance, row.session_id) == (0, channel.session_id.hex())
        stored = await device_row(platform, made.device_id)
        assert stored.online
        assert stored.status == Status.ACTIVE  # first handshake activates

        at = now_ms(clock)
        first = dev.send(event("ev-1", at=at, door="front"))
        dev.publish(dev.data_topic, first)  # QoS 1 redelivery of the same frame
        dev.send(event("ev-1", at=at, door="front"))  # the device resends (new frame)
        dev.send(event("ev-2", kind="battery.low", at=at + 1))
        dev.send({"t": "state", "at": at, "battery": 77, "firmware": "1.2.3", "signal": -61})
        await wait_until(lambda: gateway.ingest.counters.frames_accepted == 4)
        await gateway.ingest.drain()
        events = await events_of(platform, made.device_id)
        assert [(e.event_id, e.kind) for e in events] == [
            ("ev-1", "door.opened"),
            ("ev-2", "battery.low"),
        ]
        assert json.loads(events[0].data) == {"door": "front"}
        assert {e.org_id for e in events} == {stored.org_id}
        assert stored.org_id is not None
        counters = gateway.counters
        assert counters["duplicates"] == 1
        assert counters["events_duplicate"] == 1
        assert counters["events_stored"] == 2
        # The device may forget them now: one evt_ack per stored event, sent after the commit.
        while len(dev.acked_events) < 2:
            await dev.receive(acks=True)
        assert sorted(dev.acked_events) == ["ev-1", "ev-2"]
        state = await device_row(platform, made.device_id)
        assert (state.battery_pct, state.firmware_version, state.signal_dbm) == (77, "1.2.3", -61)

        command_id = await enqueue(platform, made.device_id)
        cmd = await dev.receive()
        assert (cmd["t"], cmd["id"], cmd["name"]) == ("cmd", command_id, "unlock")
        assert (await command_row(platform, command_id)).status == CommandStatus.SENT
        dev.send({"t": "ack", "id": command_id, "ok": True, "code": None})
        await wait_until(lambda: gateway.ingest.counters.acks == 1)
        await gateway.ingest.drain()
        acked = await command_row(platform, command_id)
        assert acked.status == CommandStatus.ACKED
        assert acked.attempts == 1
        await dev.close()


@pytest.mark.req("L16", "R15", "R16")
async def test_embedded_broker_authenticates_devices_and_enforces_the_acl(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    a, b = await manufacture_registered(platform, tmp_path, 2)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
    ):
        bad = TestDevice(a, platform, broker.address)
        with pytest.raises(Exception, match=REFUSED):
            await bad.connect(password="0" * 64)
        with pytest.raises(Exception, match=REFUSED):
            await TestDevice(a, platform, broker.address).connect(client_id=b.device_id)
        dev_a = TestDevice(a, platform, broker.address)
        await dev_a.connect()
        assert await dev_a.subscribe(f"anju/v1/dev/{b.device_id}/down") >= 128
        assert await dev_a.subscribe("anju/v1/dev/+/down") >= 128
        assert await dev_a.subscribe("anju/v1/dev/+/up/#") >= 128
        before = gateway.ingest.counters.messages
        hs = DeviceHandshake(
            a.device_id,
            a.certificate,
            a.se,
            ca_public_key(platform.keys),
            now_ms=lambda: now_ms(clock),
        )
        dev_a.publish(up_topic(b.device_id), hs.hello())  # A publishing on B's uplink
        dev_a.publish(session_up_topic(b.device_id, 0), b"\x01\x10" + b"\x00" * 60)
        dev_a.publish(up_topic(a.device_id), b"\x01\x7f")  # its own topic: reaches the gateway
        await wait_until(lambda: gateway.ingest.counters.messages == before + 1)
        assert gateway.ingest.counters.rejected["unknown_frame_type"] == 1
        assert broker.authority.counters.connections_refused == 2
        assert broker.authority.counters.topics_denied >= 5
        await dev_a.close()


@pytest.mark.req("L16", "L17", "R16")
async def test_refused_frames_are_counted_and_repeated_failures_raise_a_security_event(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    a, b, revoked = await manufacture_registered(platform, tmp_path, 3)
    await set_status(platform, revoked.device_id, Status.REVOKED)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address, GatewayOptions(failure_threshold=10)) as gateway,
    ):
        ingest = gateway.ingest
        dev_a, dev_b = (TestDevice(m, platform, broker.address) for m in (a, b))
        await dev_a.connect()
        await dev_b.connect()
        await dev_a.handshake()
        await dev_b.handshake()
        await wait_until(lambda: len(ingest.held_devices()) == 2)

        # Revoked device: its broker login is refused, and its HELLO (were it delivered) too.
        with pytest.raises(Exception, match=REFUSED):
            await TestDevice(revoked, platform, broker.address).connect()
        hs = DeviceHandshake(
            revoked.device_id,
            revoked.certificate,
            revoked.se,
            ca_public_key(platform.keys),
            now_ms=lambda: now_ms(clock),
        )
        ingest.on_message(up_topic(revoked.device_id), hs.hello())
        await ingest.drain()
        assert ingest.counters.rejected["device_rejected"] == 1

        # Forged HELLO: B's signature bytes altered.
        hs_b = DeviceHandshake(
            b.device_id,
            b.certificate,
            b.se,
            ca_public_key(platform.keys),
            now_ms=lambda: now_ms(clock),
        )
        hello = bytearray(hs_b.hello())
        hello[-5] ^= 0x01
        dev_b.publish(up_topic(b.device_id), bytes(hello))
        await wait_until(lambda: ingest.counters.hellos == 4)
        await ingest.drain()
        assert (
            ingest.counters.rejected["bad_signature"] + ingest.counters.rejected["frame_malformed"]
            == 1
        )

        # A's frame replayed (after a newer one), and A's frame arriving on B's topic.
        old = dev_a.send(event("a-1", at=now_ms(clock)))
        dev_a.send(event("a-2", at=now_ms(clock)))
        await wait_until(lambda: ingest.counters.frames_accepted == 2)
        dev_a.publish(dev_a.data_topic, old)
        ingest.on_message(session_up_topic(b.device_id, 0), old)  # as if the ACL had a hole
        await wait_until(lambda: ingest.counters.rejected["replay"] == 1)
        assert ingest.counters.rejected["wrong_session"] == 1

        # A stream of tampered frames on B's topic (with the forged HELLO: 10 failures in the
        # window): counted, B flagged once, A still served.
        assert dev_b.channel is not None
        for i in range(9):
            forged = bytearray(dev_b.channel.seal(event(f"b-{i}", at=now_ms(clock))))
            forged[-1] ^= 0x55  # tampered in transit: the tag no longer verifies
            ingest.on_message(dev_b.data_topic, bytes(forged))
        await ingest.drain()
        assert ingest.counters.security_events == 1
        async with platform.db.transaction() as session:
            flag = await session.get(DeviceSecurityFlag, b.device_id)
            assert flag is not None
            assert flag.times_flagged == 1
            entries = (
                (
                    await session.execute(
                        select(AuditEntry).where(
                            AuditEntry.action == "devices.security.repeated_failures"
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert [e.target for e in entries] == [f"device:{b.device_id}"]
        details = json.loads(entries[0].details)
        assert details["failures"] == 10
        assert "bad_tag" in details["reasons"]
        assert ingest.failures.by_device[b.device_id]["bad_tag"] == 9
        dev_a.send(event("a-3", at=now_ms(clock)))
        await wait_until(lambda: ingest.counters.frames_accepted == 3)
        await ingest.drain()
        assert [e.event_id for e in await events_of(platform, a.device_id)] == [
            "a-1",
            "a-2",
            "a-3",
        ]
        await dev_a.close()
        await dev_b.close()


@pytest.mark.req("L16", "R16")
async def test_malformed_wrong_topic_and_oversized_messages_never_stop_the_gateway(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
    ):
        ingest = gateway.ingest
        dev_id = made.device_id
        junk: list[tuple[str, bytes]] = [
            ("anju/v1/dev/not-a-device/up", b"\x01\x01"),
            ("anju/v1/dev/+/up", b"\x01\x01"),
            (f"anju/v1/dev/{dev_id}/down", b"\x01\x10"),
            (f"anju/v1/dev/{dev_id}/up/zz", b"\x01\x10"),
            ("something/else", b""),
            (up_topic(dev_id), b""),
            (up_topic(dev_id), b"\x02\x01"),
            (up_topic(dev_id), b"\x01\x01" + b"\xff" * 300),
            (up_topic(dev_id), b"\x01\x02" + b"\x00" * 40),
            (up_topic(dev_id), b"\x01\x10" + b"\x00" * 40),  # DATA on the HELLO topic
            (session_up_topic(dev_id, 7), b"\x01\x10" + b"\x00" * 40),  # another instance
            (session_up_topic(dev_id, 0), b"\x01\x01"),  # HELLO on the session topic
            (up_topic(dev_id), b"\x01\x01" + b"\x00" * (MAX_FRAME_BYTES + 10)),
        ]
        for topic, payload in junk:
            ingest.on_message(topic, payload)
        await ingest.drain()
        counters = ingest.counters
        assert counters.messages == len(junk)
        assert sum(counters.rejected.values()) == len(junk)
        assert counters.rejected["frame_too_large"] == 1
        assert counters.rejected["topic_invalid"] >= 6
        assert "internal_error" not in counters.rejected
        # Also through the broker: an oversized frame from the device itself.
        dev = TestDevice(made, platform, broker.address)
        await dev.connect()
        dev.publish(up_topic(dev_id), b"\x01\x01" + b"\x00" * (MAX_FRAME_BYTES + 10))
        await wait_until(lambda: counters.rejected["frame_too_large"] == 2)
        await dev.handshake()
        dev.send(event("after-junk", at=now_ms(clock)))
        await wait_until(lambda: counters.frames_accepted == 1)
        await ingest.drain()
        assert [e.event_id for e in await events_of(platform, dev_id)] == ["after-junk"]
        await dev.close()


@pytest.mark.req("L16", "L13", "L17")
async def test_gateway_restart_loses_and_duplicates_nothing(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    async with embedded_broker(platform) as broker:
        dev = TestDevice(made, platform, broker.address)
        async with running_gateway(platform, broker.address) as first:
            await dev.connect()
            await dev.handshake()
            await wait_until(lambda: made.device_id in first.ingest.held_devices())
            for i in range(5):
                dev.send(event(f"ev-{i}", at=now_ms(clock)))
            await wait_until(lambda: first.ingest.counters.events_received == 5)
            command_id = await enqueue(platform, made.device_id)
            assert (await dev.receive())["id"] == command_id  # received, not acked yet
        # The gateway stopped: everything it received is stored.
        assert len(await events_of(platform, made.device_id)) == 5
        assert (await command_row(platform, command_id)).status == CommandStatus.SENT
        async with running_gateway(platform, broker.address) as second:
            # The old session is gone with the old process: its frames are refused...
            assert dev.channel is not None
            old_session = dev.channel.session_id
            dev.send(event("lost-session", at=now_ms(clock)))
            await wait_until(lambda: second.ingest.counters.rejected["wrong_session"] == 1)
            # ...and answered with a RESET signed by the gateway key, naming that session...
            reset = await asyncio.wait_for(dev.downlink.get(), 10)
            gateway_key = platform.keys.signer(GATEWAY_SIGNER).public_key
            named = check_reset(
                reset,
                device_id=made.device_id,
                sessions=[(old_session, gateway_key)],
                now_ms=now_ms(clock),
                window_ms=300_000,
            )
            assert named == old_session
            assert second.ingest.counters.resets_sent == 1
            # ...so the device handshakes again and resends what it was not told is stored.
            await dev.handshake()
            await wait_until(lambda: made.device_id in second.ingest.held_devices())
            again = await dev.receive()  # commands of the earlier session are due at once
            assert again["id"] == command_id
            for i in range(3, 8):
                dev.send(event(f"ev-{i}", at=now_ms(clock)))
            dev.send(event("lost-session", at=now_ms(clock)))
            dev.send({"t": "ack", "id": command_id, "ok": True, "code": None})
            dev.send({"t": "ack", "id": command_id, "ok": True, "code": None})  # acks again
            await wait_until(lambda: second.ingest.counters.acks == 2)
        await dev.close()
    events = await events_of(platform, made.device_id)
    assert sorted(e.event_id for e in events) == sorted(
        [f"ev-{i}" for i in range(8)] + ["lost-session"]
    )
    async with platform.db.transaction() as session:
        total = await session.scalar(select(func.count()).select_from(DeviceEvent))
    assert total == 9
    row = await command_row(platform, command_id)
    assert row.status == CommandStatus.ACKED
    assert row.attempts == 2


@pytest.mark.req("L16", "L17")
async def test_idle_session_times_out_and_marks_the_device_offline(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    options = GatewayOptions(idle_timeout_seconds=120, sweep_seconds=3600)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address, options) as gateway,
    ):
        dev = TestDevice(made, platform, broker.address)
        await dev.connect()
        await dev.handshake()
        await wait_until(lambda: made.device_id in gateway.ingest.held_devices())
        clock.advance(seconds=60)
        dev.send(
            {"t": "state", "at": now_ms(clock), "battery": 50, "firmware": "1", "signal": None}
        )
        await wait_until(lambda: gateway.ingest.counters.states == 1)
        clock.advance(seconds=90)  # 90 s since the last frame: still within the timeout
        await gateway.ingest.sweep()
        await gateway.ingest.drain()
        assert (await device_row(platform, made.device_id)).online
        clock.advance(seconds=60)
        await gateway.ingest.sweep()
        await gateway.ingest.drain()
        assert not (await device_row(platform, made.device_id)).online
        assert await session_row(platform, made.device_id) is None
        assert gateway.ingest.channel(made.device_id) is None
        await dev.close()


@pytest.mark.req("L14", "L16")
async def test_revoking_a_device_ends_its_session_at_the_next_sweep(
    platform: Platform, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
    ):
        dev = TestDevice(made, platform, broker.address)
        await dev.connect()
        await dev.handshake()
        await wait_until(lambda: made.device_id in gateway.ingest.held_devices())
        await set_status(platform, made.device_id, Status.REVOKED)
        await gateway.ingest.sweep()
        await gateway.ingest.drain()
        assert gateway.ingest.channel(made.device_id) is None
        assert await session_row(platform, made.device_id) is None
        dev.send(event("after-revocation", at=0))
        await wait_until(lambda: gateway.ingest.counters.rejected["wrong_session"] == 1)
        assert await events_of(platform, made.device_id) == []
        await dev.close()
