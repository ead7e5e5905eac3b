"""Reference lock firmware: offline buffering, back-fill, command semantics.

Runs against the stand-in gateway (tests/support/fake_gateway.py) on the system Mosquitto.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from anju.device.client import system_ms
from anju.device.lock import LockConfig, LockFirmware
from tests.support.device_harness import fast_options, gateway, running, wait_until
from tests.support.fake_gateway import MadeDevice, Pki, make_device

pytestmark = [pytest.mark.req("R2", "L13", "L16", "R18", "R19")]


@pytest.fixture
def pki() -> Pki:
    from tests.support.fake_gateway import require_mosquitto

    require_mosquitto()
    return Pki()


@pytest.fixture
def device(pki: Pki, tmp_path: Path) -> MadeDevice:
    return make_device(pki, tmp_path / "dev")


def firmware(device: MadeDevice, data: Path, **config: int | float) -> LockFirmware:
    """A lock as the firmware starts after power-up: SE reopened, PIN verified."""
    return LockFirmware(
        device.identity,
        device.reopen_se(),
        data,
        options=fast_options(),
        config=LockConfig(**config),  # type: ignore[arg-type]
    )


async def test_offline_events_are_buffered_and_back_filled_in_order_once_across_a_restart(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = firmware(device, data)
    async with running(first):  # no platform answers: HELLOs time out, events pile up
        ids = [first.record_event("door.opened", {"n": n}) for n in range(5)]
        await wait_until(lambda: first.client.stats.handshake_failures >= 1)
        assert first.buffer.stats().pending == 5
        assert first.stats.events_sent == 0
    assert (data / "events" / "events.log").exists()

    second = firmware(device, data)  # the device restarted while still offline
    assert second.buffer.stats().pending == 5
    async with running(second):
        ids += [second.record_event("door.opened", {"n": n}) for n in range(5, 8)]
        async with gateway(pki, device) as fake:
            await fake.wait_for(lambda: len(fake.of_type(device.device_id, "evt")) >= 8, 20)
            await wait_until(lambda: second.buffer.stats().pending == 0)
            ids.append(second.record_event("door.closed"))  # and live again afterwards
            await fake.wait_for(lambda: len(fake.of_type(device.device_id, "evt")) >= 9)
            await wait_until(lambda: second.buffer.stats().pending == 0)  # evt_ack came back
    received = [e["id"] for e in fake.of_type(device.device_id, "evt")]
    assert received == ids  # in order, none twice, none lost
    assert [e["data"].get("n") for e in fake.of_type(device.device_id, "evt")][:8] == list(range(8))
    assert fake.duplicates == 0
    assert fake.errors == []

    third = firmware(device, data)  # nothing is uploaded again after another restart
    assert third.buffer.stats().pending == 0


async def test_buffer_overflow_drops_the_oldest_and_counts_them(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    lock = firmware(device, tmp_path / "data", buffer_capacity=500, state_interval_s=0.5)
    ids = [lock.record_event("door.opened", {"n": n}) for n in range(510)]
    stats = lock.buffer.stats()
    assert (stats.pending, stats.dropped) == (500, 10)
    async with gateway(pki, device) as fake, running(lock):
        await fake.wait_for(lambda: len(fake.of_type(device.device_id, "evt")) >= 500, 30)
        await fake.wait_for(
            lambda: any(
                s["extra"]["events_dropped"] == 10 and s["extra"]["events_pending"] == 0
                for s in fake.of_type(device.device_id, "state")
            ),
            10,
        )
    assert [e["id"] for e in fake.of_type(device.device_id, "evt")] == ids[10:]


async def test_redelivered_command_is_executed_once_and_acked_every_time(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    lock = firmware(device, data)
    device_id = device.device_id

    def acks(command_id: str) -> list[dict[str, object]]:
        return [a for a in fake.of_type(device_id, "ack") if a["id"] == command_id]

    def unlock_events(command_id: str) -> int:
        return sum(
            1
            for e in fake.of_type(device_id, "evt")
            if e["kind"] == "lock.unlocked" and e["data"].get("cmd") == command_id
        )

    async with gateway(pki, device) as fake:
        async with running(lock):
            await fake.wait_for(lambda: fake.confirmed == 1)
            command_id = fake.send_cmd(device_id, "unlock")
            await fake.wait_for(lambda: len(acks(command_id)) == 1)
            lock.set_locked(True, by="keypad")  # someone locks it by hand meanwhile
            fake.send_cmd(device_id, "unlock", command_id=command_id)  # platform retries
            await fake.wait_for(lambda: len(acks(command_id)) == 2)
            assert lock.locked is True  # not unlocked a second time
            assert lock.stats.commands_executed == 1
            assert lock.stats.commands_redelivered == 1

        restarted = firmware(device, data)  # the remembered ids survive a restart
        async with running(restarted):
            await fake.wait_for(lambda: fake.confirmed == 2)
            fake.send_cmd(device_id, "unlock", command_id=command_id)
            await fake.wait_for(lambda: len(acks(command_id)) == 3)
            await asyncio.sleep(0.2)
            assert restarted.locked is True
            assert restarted.stats.commands_executed == 0
    assert all(a["ok"] is True and a["code"] is None for a in acks(command_id))
    assert unlock_events(command_id) == 1


async def test_command_results_unknown_expired_bad_args_and_attributes(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    lock = firmware(device, tmp_path / "data")
    device_id = device.device_id
    async with gateway(pki, device) as fake, running(lock):
        await fake.wait_for(lambda: fake.confirmed == 1)
        sent = {
            "unknown": fake.send_cmd(device_id, "self_destruct"),
            "expired": fake.send_cmd(device_id, "unlock", exp_ms=system_ms() - 1000),
            "bad_args": fake.send_cmd(device_id, "set_attribute", {"name": "Bad Name", "value": 1}),
            "attribute": fake.send_cmd(
                device_id, "set_attribute", {"name": "auto_lock_s", "value": 30}
            ),
            "ping": fake.send_cmd(device_id, "ping"),
            "report": fake.send_cmd(device_id, "report_state"),
        }
        await fake.wait_for(lambda: len(fake.of_type(device_id, "ack")) == len(sent))
        result = {a["id"]: (a["ok"], a["code"]) for a in fake.of_type(device_id, "ack")}
        assert result[sent["unknown"]] == (False, "unknown_command")
        assert result[sent["expired"]] == (False, "expired")
        assert result[sent["bad_args"]] == (False, "bad_args")
        assert result[sent["attribute"]] == (True, None)
        assert result[sent["ping"]] == (True, None)
        assert result[sent["report"]] == (True, None)
        assert lock.locked is True  # the expired unlock was not executed
        await fake.wait_for(
            lambda: any(
                s["extra"].get("attr.auto_lock_s") == 30 for s in fake.of_type(device_id, "state")
            )
        )


async def test_a_command_interrupted_by_a_crash_is_not_executed_again(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    crashed = firmware(device, data)
    # Power failed after the id was recorded and before the result was: state as left on flash.
    crashed._executed["cmd-1"] = None
    crashed._save()
    lock = firmware(device, data)
    async with gateway(pki, device) as fake, running(lock):
        await fake.wait_for(lambda: fake.confirmed == 1)
        fake.send_cmd(device.device_id, "unlock", command_id="cmd-1")
        await fake.wait_for(lambda: bool(fake.of_type(device.device_id, "ack")))
    assert fake.of_type(device.device_id, "ack") == [
        {"t": "ack", "id": "cmd-1", "ok": False, "code": "interrupted"}
    ]
    assert lock.locked is True
    assert lock.stats.commands_executed == 0


async def test_events_stay_on_the_lock_until_the_platform_acknowledges_them(
    pki: Pki, device: MadeDevice, tmp_path: Path
) -> None:
    """Delivered to the broker is not enough: only the platform's evt_ack (sent once the events
    are stored) lets the lock forget them; unacknowledged ones are sent again, same ids."""
    lock = firmware(device, tmp_path / "data", ack_timeout_s=0.5)
    # A platform that received the events but has not stored them yet:
    async with gateway(pki, device, ack_events=False) as fake, running(lock):
        await fake.wait_for(lambda: fake.confirmed == 1)
        ids = [lock.record_event("door.opened", {"n": n}) for n in range(3)]
        await fake.wait_for(lambda: len(fake.of_type(device.device_id, "evt")) >= 6)  # resent
        assert lock.buffer.stats().pending == 3
        assert lock.stats.events_sent == 0
        assert lock.stats.events_resent >= 3
        fake.ack_events = True
        await wait_until(lambda: lock.buffer.stats().pending == 0)
    received = [e["id"] for e in fake.of_type(device.device_id, "evt")]
    assert set(received) == set(ids)  # the same ids each time: the platform de-duplicates
    assert received[:3] == ids
    assert lock.stats.events_sent == 3
    assert firmware(device, tmp_path / "data").buffer.stats().pending == 0
