"""Access control over the real device channel: a credential pushed as a command is confirmed
by a signed receipt that reaches the gateway, and so is the unlock it allows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from anju.device.client import system_ms
from anju.device.lock import LockFirmware
from anju.protocol.access import PUT_COMMAND, CredentialKind, verify_record
from tests.support.device_harness import fast_options, gateway, running
from tests.support.fake_gateway import Pki, make_device, require_mosquitto
from tests.support.lock_access import HOUR, Issuer, credential


@pytest.mark.req("L9", "L15", "L17")
async def test_a_pushed_passcode_is_confirmed_by_a_signed_receipt_and_its_use_uploaded(
    tmp_path: Path,
) -> None:
    require_mosquitto()
    pki = Pki()
    device = make_device(pki, tmp_path / "dev")
    now_s = int(time.time())
    issuer = Issuer(pki, not_before_s=now_s - 3600, not_after_s=now_s + 86_400)
    lock = LockFirmware(
        device.identity, device.reopen_se(), tmp_path / "data", options=fast_options()
    )
    record = credential(
        device,
        "pc-1",
        "guest-1",
        CredentialKind.PASSCODE,
        b"73915824",
        from_ms=system_ms() - HOUR,
        until_ms=system_ms() + HOUR,
    )
    key = device.identity.certificate.public_key

    def signed(kind: str) -> list[dict[str, object]]:
        return [
            verify_record(e["data"], device_id=device.device_id, public_key=key)
            for e in fake.of_type(device.device_id, "evt")
            if e["kind"] == kind
        ]

    async with running(lock), gateway(pki, device) as fake:
        await fake.wait_for(lambda: fake.sessions.get(device.device_id) is not None, 20)
        command_id = fake.send_cmd(device.device_id, PUT_COMMAND, issuer.put_args(record, device))
        await fake.wait_for(
            lambda: any(a["id"] == command_id for a in fake.of_type(device.device_id, "ack"))
        )
        [ack] = [a for a in fake.of_type(device.device_id, "ack") if a["id"] == command_id]
        assert (ack["ok"], ack["code"]) == (True, None)
        await fake.wait_for(lambda: len(signed("access.receipt")) == 1)
        [receipt] = signed("access.receipt")
        assert (receipt["cmd"], receipt["state"], receipt["cred"]) == (
            command_id,
            "installed",
            "pc-1",
        )
        assert lock.access.enter_passcode("73915824").granted
        await fake.wait_for(lambda: len(signed("access.unlock")) == 1)
        [unlock] = signed("access.unlock")
        assert (unlock["result"], unlock["cred"], unlock["subject"]) == (
            "granted",
            "pc-1",
            "guest-1",
        )
        assert all("73915824" not in str(m) for m in fake.messages[device.device_id])
