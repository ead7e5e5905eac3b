"""The lock's lockout and alarms: brute force locks everything out (and survives pulling the
battery), sensors raise and clear signed alarms exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from anju.device.access import LockoutPolicy, SimulatedCard
from anju.device.access.alarms import AlarmPolicy
from anju.device.lock import LockFirmware
from anju.protocol.access import (
    ALARM_CLEARED_EVENT,
    ALARM_RAISED_EVENT,
    PUT_COMMAND,
    UNLOCK_EVENT,
    CredentialKind,
)
from tests.support.fake_gateway import MadeDevice, Pki, make_device
from tests.support.lock_access import (
    Issuer,
    LockClock,
    command,
    credential,
    make_lock,
    signed_records,
)

CODE = "73915824"


@pytest.fixture
def device(tmp_path: Path) -> MadeDevice:
    return make_device(Pki(), tmp_path / "dev")


def alarms(lock: LockFirmware, device: MadeDevice) -> list[tuple[str, str]]:
    raised = [("raised", r["alarm"]) for r in signed_records(lock, device, ALARM_RAISED_EVENT)]
    cleared = [("cleared", r["alarm"]) for r in signed_records(lock, device, ALARM_CLEARED_EVENT)]
    return raised + cleared


@pytest.mark.req("L15", "R2", "L17")
async def test_five_wrong_attempts_lock_out_every_method_across_a_power_cycle(
    device: MadeDevice, tmp_path: Path
) -> None:
    clock = LockClock()
    data = tmp_path / "data"
    policy = LockoutPolicy(threshold=5, window_s=300, max_window_s=1200)
    lock = make_lock(device, data, clock, lockout=policy)
    for guess in ("00000000", "11111111", "22222222", "33333333"):
        assert lock.access.enter_passcode(guess).reason == "unknown_credential"
    # The attacker pulls the battery before the fifth guess: the count is durable.
    lock = make_lock(device, data, clock, lockout=policy)
    assert lock.access.lockout.failures == 4
    assert lock.access.present_card(SimulatedCard("deadbeef")).reason == "unknown_credential"
    assert lock.access.enter_passcode(CODE).reason == "locked_out"
    assert lock.access.present_card(SimulatedCard("deadbeef")).reason == "locked_out"
    assert alarms(lock, device) == [("raised", "wrong_attempts")]
    rebooted = make_lock(device, data, clock, lockout=policy)
    assert rebooted.access.enter_passcode(CODE).reason == "locked_out"
    clock.advance(300)
    assert rebooted.access.enter_passcode("44444444").reason == "unknown_credential"
    # A second lockout doubles the window.
    for guess in ("5555555", "6666666", "7777777", "8888888"):
        rebooted.access.enter_passcode(guess)
    assert rebooted.access.lockout.until_ms == clock.ms + 600_000
    clock.advance(599)
    assert rebooted.access.enter_passcode("99999999").reason == "locked_out"
    assert rebooted.access.lockout.failures == 0  # refusals while locked out are not counted


@pytest.mark.req("L15", "R2")
async def test_a_success_resets_the_counter_and_clears_the_alarm(tmp_path: Path) -> None:
    clock = LockClock()
    pki = Pki()
    device = make_device(pki, tmp_path / "dev")
    issuer = Issuer(pki)
    lock = make_lock(device, tmp_path / "data", clock)
    record = credential(device, "pc-1", "guest-1", CredentialKind.PASSCODE, CODE.encode())
    await command(lock, PUT_COMMAND, issuer.put_args(record, device))
    for guess in ("00000000", "11111111", "22222222", "33333333"):
        lock.access.enter_passcode(guess)
    assert lock.access.enter_passcode(CODE).granted
    assert lock.access.lockout.failures == 0
    for guess in ("00000000", "11111111", "22222222", "33333333", "44444444"):
        lock.access.enter_passcode(guess)
    assert lock.access.enter_passcode(CODE).reason == "locked_out"
    clock.advance(300)  # the first lockout again: the success forgot the doubling
    assert lock.access.enter_passcode(CODE).granted
    assert alarms(lock, device) == [("raised", "wrong_attempts"), ("cleared", "wrong_attempts")]
    reasons = [r["reason"] for r in signed_records(lock, device, UNLOCK_EVENT)]
    assert reasons.count("locked_out") == 1
    assert reasons[-1] is None


@pytest.mark.req("R2")
async def test_tamper_battery_and_door_alarms_are_raised_once_and_cleared(
    device: MadeDevice, tmp_path: Path
) -> None:
    clock = LockClock()
    data = tmp_path / "data"
    lock = make_lock(device, data, clock, alarms=AlarmPolicy(door_open_s=60))
    sensors = lock.access.alarms
    sensors.tamper(True)
    sensors.tamper(True)  # still open: no second alarm
    sensors.tamper(False)
    lock.set_battery(25)  # above the threshold
    lock.set_battery(19)
    lock.set_battery(21)  # wobbling: hysteresis keeps it raised
    lock.set_battery(18)
    assert alarms(lock, device) == [
        ("raised", "tamper"),
        ("raised", "low_battery"),
        ("cleared", "tamper"),
    ]
    lock = make_lock(device, data, clock)  # power cycle: still known as raised
    lock.set_battery(100)  # batteries replaced
    assert ("cleared", "low_battery") in alarms(lock, device)

    # Forced entry: the door opens while the bolt is locked.
    assert lock.locked
    lock.access.alarms.door_opened()
    lock.access.alarms.door_closed()
    # Left open: after an unlock, open longer than 60 s; closing clears it and relocks.
    lock.access.inside_handle()
    assert not lock.locked
    lock.access.alarms.door_opened()
    clock.advance(59)
    lock.access.alarms.poll()
    clock.advance(1)
    lock.access.alarms.poll()
    lock.access.alarms.poll()
    lock.access.alarms.door_closed()
    assert lock.locked
    raised = [r["alarm"] for r in signed_records(lock, device, ALARM_RAISED_EVENT)]
    cleared = [r["alarm"] for r in signed_records(lock, device, ALARM_CLEARED_EVENT)]
    assert raised == ["tamper", "low_battery", "forced_entry", "door_left_open"]
    assert cleared == ["tamper", "low_battery", "forced_entry", "door_left_open"]
