"""Driving the reference lock's access control in tests: the platform's signer, commands
delivered through the lock's command path, and its signed records read back and verified."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anju.device.access import AccessOptions
from anju.device.access.offline import OfflineBookFactory, code_book
from anju.device.lock import LockConfig, LockFirmware
from anju.kit.crypto import SM2PrivateKey
from anju.protocol.access import (
    CredentialKind,
    CredentialRecord,
    EKeyToken,
    Schedule,
    encode_signer,
    issue_ekey,
    seal_credential,
    verify_record,
)
from anju.protocol.certificates import Certificate, CertKind, issue_certificate
from tests.support.fake_gateway import MadeDevice, Pki

#: 2026-03-02 00:00:00 UTC (a Monday), in ms.
T0 = 1_772_409_600_000
HOUR = 3_600_000
DAY = 24 * HOUR


@dataclass
class LockClock:
    """The lock's own clock (ms), which a test moves or lets drift."""

    ms: int = T0

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


@dataclass
class Issuer:
    """The platform's side: an access key certified by the device CA, sealing and signing."""

    pki: Pki
    key: SM2PrivateKey = field(default_factory=SM2PrivateKey.generate)
    kind: CertKind = CertKind.ACCESS
    not_before_s: int = T0 // 1000 - 86_400
    not_after_s: int = T0 // 1000 + 400 * 86_400

    def certificate(self) -> Certificate:
        return issue_certificate(
            self.pki.ca_key,
            kind=self.kind,
            subject="access.test",
            se_id="",
            product="anju-firmware",
            public_key=self.key.public_key,
            not_before=self.not_before_s,
            not_after=self.not_after_s,
        )

    def put_args(self, record: CredentialRecord, device: MadeDevice) -> dict[str, Any]:
        box = seal_credential(
            record, device_public_key=device.identity.certificate.public_key, sign=self.key.sign
        )
        return {"cred": record.cred, "box": box, "cert": encode_signer(self.certificate())}

    def ekey(self, token: EKeyToken) -> str:
        return issue_ekey(token, sign=self.key.sign)


def credential(
    device: MadeDevice,
    cred: str,
    subject: str,
    kind: CredentialKind,
    secret: bytes,
    *,
    from_ms: int = T0 - HOUR,
    until_ms: int | None = T0 + DAY,
    schedule: Schedule | None = None,
    uses: int | None = None,
) -> CredentialRecord:
    return CredentialRecord(
        cred=cred,
        device=device.device_id,
        subject=subject,
        kind=kind,
        secret=secret,
        from_ms=from_ms,
        until_ms=until_ms,
        issued_ms=T0 - HOUR,
        schedule=schedule,
        uses=uses,
    )


def make_lock(
    device: MadeDevice,
    data: Path,
    clock: LockClock,
    *,
    offline_book: OfflineBookFactory | None = code_book,
    **access: Any,
) -> LockFirmware:
    """The lock as it starts after power-up (SE reopened), never connected in these tests."""
    return LockFirmware(
        device.identity,
        device.reopen_se(),
        data,
        config=LockConfig(access=AccessOptions(**access)),
        now_ms=clock,
        offline_book=offline_book,
    )


async def command(lock: LockFirmware, name: str, args: dict[str, Any]) -> tuple[bool, str | None]:
    """Deliver one command through the lock's command path; its (ok, code) as acknowledged."""
    command_id = uuid.uuid4().hex
    message = {"t": "cmd", "id": command_id, "name": name, "args": args, "exp": 1 << 50}
    await lock._on_message(message)
    result = lock._executed[command_id]
    assert result is not None
    return result


def signed_records(lock: LockFirmware, device: MadeDevice, kind: str) -> list[dict[str, Any]]:
    """The records of ``kind`` waiting in the lock's event buffer, each signature verified with
    the device's certified public key (as the gateway does)."""
    out = []
    for event in lock.buffer.pending(10_000):
        message = json.loads(event.record)
        if message.get("t") == "evt" and message["kind"] == kind:
            out.append(
                verify_record(
                    message["data"],
                    device_id=device.device_id,
                    public_key=device.identity.certificate.public_key,
                )
            )
    return out
