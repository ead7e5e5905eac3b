"""Device SDK connection: handshake, secure channel, rekey, reconnect, attack response.

Runs against a stand-in gateway (tests/support/fake_gateway.py) on the system Mosquitto.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anju.device.client import (
    Backoff,
    DeviceClient,
    DeviceKeysDestroyed,
    mqtt_password,
)
from anju.device.lock import LockFirmware
from anju.device.secure_element import Lifecycle
from anju.kit.crypto import SM2PrivateKey, hkdf_sm3, hmac_sm3
from anju.protocol.handshake import ChannelOptions
from anju.protocol.keys import mqtt_password as platform_password
from anju.protocol.topics import up_topic
from tests.support.device_harness import fast_options, gateway, running, wait_until
from tests.support.fake_gateway import FakeGateway, MadeDevice, Pki, make_device, require_mosquitto

REQ = pytest.mark.req("R2", "L13", "L16", "R18", "R19")
pytestmark = [REQ]


@pytest.fixture
def pki() -> Pki:
    require_mosquitto()
    return Pki()


@pytest.fixture
def device(pki: Pki, tmp_path: Path) -> MadeDevice:
    return make_device(pki, tmp_path / "dev")


def test_backoff_is_exponential_capped_and_fully_jittered() -> None:
    backoff = Backoff(base_s=1.0, cap_s=60.0)
    assert [backoff.ceiling(n) for n in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff.ceiling(10_000) == 60  # no overflow after days offline
    assert [backoff.delay(n, lambda: 0.5) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(5, lambda: 0.0) == 0.0  # full jitter: anywhere from zero


def test_mqtt_password_is_the_se_hmac_the_platform_can_recompute(device: MadeDevice) -> None:
    password = mqtt_password(device.se, device.device_id)
    key = hkdf_sm3(device.root_key, length=32, info=b"anju/se/hmac/v1:anju/mqtt-password/v1")
    assert password == hmac_sm3(key, bytes.fromhex(device.device_id)).hex()
    assert len(password) == 64


def test_device_password_matches_the_platforms_computation(device: MadeDevice) -> None:
    assert mqtt_password(device.se, device.device_id) == platform_password(
        device.root_key, device.device_id
    )


async def test_handshake_events_state_command_and_ack_end_to_end(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    from anju.device.lock import LockConfig

    lock = LockFirmware(
        device.identity,
        device.se,
        tmp_path / "data",
        options=fast_options(),
        config=LockConfig(state_interval_s=0.3),
    )
    async with gateway(pki, device) as fake, running(lock):
        await fake.wait_for(lambda: fake.confirmed == 1 and fake.of_type(device.device_id, "state"))
        assert lock.client.connected
        event_id = lock.record_event("door.opened", {"sensor": "reed"})
        await fake.wait_for(lambda: fake.of_type(device.device_id, "evt"))
        [event] = fake.of_type(device.device_id, "evt")
        assert (event["id"], event["kind"], event["data"]) == (
            event_id,
            "door.opened",
            {"sensor": "reed"},
        )

        command_id = fake.send_cmd(device.device_id, "unlock")
        await fake.wait_for(lambda: fake.of_type(device.device_id, "ack"))
        assert fake.of_type(device.device_id, "ack") == [
            {"t": "ack", "id": command_id, "ok": True, "code": None}
        ]
        assert lock.locked is False
        await fake.wait_for(
            lambda: any(
                e["kind"] == "lock.unlocked" and e["data"]["cmd"] == command_id
                for e in fake.of_type(device.device_id, "evt")
            )
        )
        await fake.wait_for(
            lambda: fake.of_type(device.device_id, "state")[-1]["extra"]["locked"] is False
        )
        state = fake.of_type(device.device_id, "state")[-1]
        assert state["firmware"].startswith("anju-lock/")
        assert state["battery"] == 100
        # Periodic reports keep coming without any change.
        count = len(fake.of_type(device.device_id, "state"))
        await fake.wait_for(lambda: len(fake.of_type(device.device_id, "state")) >= count + 2)

    # Every DATA frame went to the instance that answered the HELLO; nothing was refused.
    assert fake.data_topics == {up_topic(device.device_id) + "/00a7"}
    assert fake.errors == []
    assert fake.hellos == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_reconnect_delays_follow_the_backoff_schedule_with_injected_random(
    device: MadeDevice,
) -> None:
    draws = iter([0.9, 0.1, 0.5, 1.0, 0.25, 0.75, 0.5, 0.5])
    backoff = Backoff(base_s=0.01, cap_s=0.05)

    async def ignore(_: dict[str, Any]) -> None:
        return None

    client = DeviceClient(
        device.identity,
        device.se,
        on_message=ignore,
        options=fast_options(port=closed_port(), backoff=backoff),
        rand=lambda: next(draws),
    )
    task = asyncio.create_task(client.run())
    await wait_until(lambda: len(client.stats.delays) >= 6)
    await client.stop()
    await asyncio.wait_for(task, 5)
    expected = [0.9 * 0.01, 0.1 * 0.02, 0.5 * 0.04, 1.0 * 0.05, 0.25 * 0.05, 0.75 * 0.05]
    assert list(client.stats.delays)[:6] == pytest.approx(expected)
    assert client.stats.connect_failures >= 6
    assert client.stats.sessions == 0
    assert not client.connected


async def test_dropped_connection_reconnects_with_a_fresh_handshake(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    lock = LockFirmware(device.identity, device.se, tmp_path / "data", options=fast_options())
    async with gateway(pki, device) as fake, running(lock):
        await fake.wait_for(lambda: fake.confirmed == 1)
        first_session = lock.client.session_id
        lock.client.drop_connection()
        await fake.wait_for(lambda: fake.confirmed == 2)
        await wait_until(lambda: lock.client.connected)
        assert lock.client.session_id != first_session
        assert lock.client.stats.connects == 2
        assert lock.client.stats.sessions == 2
        # The wait before reconnecting was the first step of the schedule (bounded, jittered).
        assert 0 <= lock.client.stats.delays[-1] <= 0.05
        command_id = fake.send_cmd(device.device_id, "ping")
        await fake.wait_for(
            lambda: any(a["id"] == command_id for a in fake.of_type(device.device_id, "ack"))
        )
    assert fake.hellos == 2


async def test_a_restarted_gateway_is_found_again_by_the_silence_rekey(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    lock = LockFirmware(
        device.identity,
        device.se,
        tmp_path / "data",
        options=fast_options(downlink_silence_rekey_s=1.0),
    )
    async with running(lock):
        async with gateway(pki, device) as fake:
            await fake.wait_for(lambda: fake.confirmed == 1)
        # That instance died with the session's keys; another one (instance 2) takes over.
        async with gateway(pki, device, instance=2) as second:
            await second.wait_for(lambda: second.confirmed == 1, seconds=15)
            lock.record_event("door.opened")
            await second.wait_for(lambda: second.of_type(device.device_id, "evt"))
            assert second.data_topics == {up_topic(device.device_id) + "/0002"}


async def test_rekey_after_the_frame_threshold_keeps_every_event(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    options = fast_options(channel=ChannelOptions(rekey_after_frames=8))
    lock = LockFirmware(device.identity, device.se, tmp_path / "data", options=options)
    async with gateway(pki, device) as fake, running(lock):
        await fake.wait_for(lambda: fake.confirmed == 1)
        ids: list[str] = []
        for round_ in range(3):
            ids += [lock.record_event("door.opened", {"n": n}) for n in range(10)]
            expected, rekeys = len(ids), round_ + 1
            await fake.wait_for(
                lambda expected=expected: len(fake.of_type(device.device_id, "evt")) == expected
            )
            await wait_until(lambda rekeys=rekeys: lock.client.stats.rekeys == rekeys)
    received = [e["id"] for e in fake.of_type(device.device_id, "evt")]
    assert received == ids
    assert fake.confirmed >= 3  # the first session and at least two rekeys
    assert lock.client.stats.connects == 1  # on the same MQTT connection
    assert "wrong_session" not in fake.errors


async def test_rekey_on_the_platforms_request(pki: Pki, device: MadeDevice, tmp_path: Path) -> None:
    lock = LockFirmware(device.identity, device.se, tmp_path / "data", options=fast_options())
    async with gateway(pki, device) as fake, running(lock):
        await fake.wait_for(lambda: fake.confirmed == 1)
        fake.send(device.device_id, {"t": "rekey"})
        await fake.wait_for(lambda: fake.confirmed == 2)
        await wait_until(lambda: lock.client.stats.rekeys == 1)
        command_id = fake.send_cmd(device.device_id, "ping")
        await fake.wait_for(
            lambda: any(a["id"] == command_id for a in fake.of_type(device.device_id, "ack"))
        )


@contextlib.contextmanager
def forged_signer(fake: FakeGateway, key: SM2PrivateKey) -> Iterator[None]:
    # The certificate stays the real gateway's; only the key signing WELCOME is another one.
    real = fake.handshake._signer
    fake.handshake._signer = key
    try:
        yield
    finally:
        fake.handshake._signer = real


async def test_device_refuses_a_welcome_from_an_impostor_gateway(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    impostor = Pki()  # its own CA: its certificate names an issuer the device does not trust
    lock = LockFirmware(device.identity, device.se, tmp_path / "data", options=fast_options())
    async with gateway(pki, device, gateway_pki=impostor) as fake, running(lock):
        await wait_until(lambda: lock.client.stats.handshake_failures >= 2)
        assert lock.client.stats.last_error == "cert_wrong_issuer"
        assert not lock.client.connected
        assert lock.client.stats.sessions == 0
        assert fake.confirmed == 0
        assert fake.hellos >= 2
    # A wrong CA is a configuration mistake, not proof of an attack: nothing counted.
    assert device.se.info().failures == 0


async def test_device_refuses_a_welcome_signed_by_a_wrong_gateway_key(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    lock = LockFirmware(device.identity, device.se, tmp_path / "data", options=fast_options())
    async with gateway(pki, device) as fake:
        with forged_signer(fake, SM2PrivateKey.generate()):
            async with running(lock):
                await wait_until(lambda: lock.client.stats.handshake_failures >= 2)
                assert lock.client.stats.last_error == "bad_signature"
                assert fake.confirmed == 0
                assert lock.client.stats.sessions == 0
        # Forged signatures are attack signals, counted durably in the SE.
        assert device.se.info().failures >= 2


async def test_repeated_forged_downlink_frames_destroy_the_keys_and_stop_the_device(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    threshold = device.se.info().failure_threshold
    assert threshold == 16  # the SE's default, used by `anju devices manufacture`
    lock = LockFirmware(device.identity, device.se, tmp_path / "data", options=fast_options())
    async with gateway(pki, device) as fake:
        task = asyncio.create_task(lock.run())
        await fake.wait_for(lambda: fake.confirmed == 1)

        def forge() -> None:
            channel = fake.sessions.get(device.device_id)
            assert channel is not None
            frame = bytearray(
                channel.seal({"t": "cmd", "id": "x", "name": "unlock", "args": {}, "exp": 2**52})
            )
            frame[-1] ^= 1  # tag no longer verifies
            fake.send_raw(device.device_id, bytes(frame))

        for _ in range(threshold - 1):
            forge()
        await wait_until(lambda: lock.client.stats.attack_signals == threshold - 1)
        assert device.se.lifecycle is Lifecycle.LOCKED
        assert lock.locked
        # Still alive below the threshold, and a genuine command still works.
        command_id = fake.send_cmd(device.device_id, "ping")
        await fake.wait_for(
            lambda: any(a["id"] == command_id for a in fake.of_type(device.device_id, "ack"))
        )
        forge()
        await asyncio.wait_for(task, 10)
    assert lock.stats.stopped == "keys_destroyed"
    assert device.se.lifecycle is Lifecycle.ZEROIZED
    assert (device.path / "se" / "ZEROIZED").exists()
    assert not (device.path / "se" / "state.a").exists()
    with pytest.raises(DeviceKeysDestroyed):  # and it never talks again
        await DeviceClient(
            device.identity,
            device.se,
            on_message=lambda _: asyncio.sleep(0),
            options=fast_options(),
        ).run()


async def test_a_gateway_reset_starts_a_new_handshake_at_once(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    """A restarted gateway answers frames of a session it no longer holds with a signed RESET:
    the device handshakes again right away instead of after its downlink-silence rekey."""
    lock = LockFirmware(device.identity, device.se, tmp_path / "data", options=fast_options())
    async with gateway(pki, device) as fake, running(lock):
        await fake.wait_for(lambda: fake.confirmed == 1)
        fake.send_reset(device.device_id)
        await fake.wait_for(lambda: fake.confirmed == 2)
        assert lock.client.stats.resets == 1
        lock.record_event("door.opened")
        await fake.wait_for(lambda: fake.of_type(device.device_id, "evt"))
        assert lock.client.stats.connects == 1  # on the same MQTT connection
        assert fake.errors == []


async def test_forged_stale_or_foreign_resets_are_ignored_and_never_brick_the_device(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    lock = LockFirmware(device.identity, device.se, tmp_path / "data", options=fast_options())
    async with gateway(pki, device) as fake, running(lock):
        await fake.wait_for(lambda: fake.confirmed == 1)
        for _ in range(20):  # more than the SE's attack threshold (16)
            fake.send_reset(device.device_id, key=SM2PrivateKey.generate())  # forged
        fake.send_reset(device.device_id, now_ms=1_000)  # stale
        fake.send_reset(device.device_id, session_id=bytes(8))  # not our session
        await wait_until(lambda: lock.client.stats.frames_dropped >= 22)
        assert lock.client.stats.resets == 0
        assert lock.client.stats.attack_signals == 0  # a RESET grants nothing: not an attack
        assert not lock.client.keys_destroyed
        command_id = fake.send_cmd(device.device_id, "ping")  # the session is untouched
        await fake.wait_for(
            lambda: any(a["id"] == command_id for a in fake.of_type(device.device_id, "ack"))
        )
        assert fake.confirmed == 1


async def test_resets_are_rate_limited_on_the_device(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    options = fast_options(reset_min_interval_s=60.0)
    lock = LockFirmware(device.identity, device.se, tmp_path / "data", options=options)
    async with gateway(pki, device) as fake, running(lock):
        await fake.wait_for(lambda: fake.confirmed == 1)
        fake.send_reset(device.device_id)
        await fake.wait_for(lambda: fake.confirmed == 2)
        fake.send_reset(device.device_id)  # valid for the new session, but too soon
        await wait_until(lambda: lock.client.stats.frames_dropped >= 1)
        assert lock.client.stats.resets == 1
        assert fake.confirmed == 2
