"""Provisioning: the factory command (one device, one key) and dynamic registration (一型一密)."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from anju.cli.devices import app
from anju.device.secure_element import SoftwareSecureElement
from anju.devices.ca import GatewayCertificates, ca_public_key
from anju.devices.lifecycle import Status, claim_code
from anju.devices.models import Device, DeviceProduct
from anju.devices.provisioning import (
    FAILURE_WINDOW_SECONDS,
    MAX_PRODUCT_FAILURES,
    REGISTRATION_WINDOW_SECONDS,
    DynamicRegistration,
    DynamicRegistrationResult,
    ProvisioningService,
    proof_message,
)
from anju.devices.service import DeviceService, run_device_boundary
from anju.errors import AnjuError
from anju.kit.clock import FixedClock
from anju.kit.crypto import SM2PrivateKey, hmac_sm3, random_bytes
from anju.platform import Platform
from anju.protocol.certificates import Certificate, CertKind
from anju.settings import Settings
from tests.support.plaintext_scan import scan_platform_storage, sqlite_storage_files
from tests.support.registry import as_device_principal, audit_entries, device_row, tenant

runner = CliRunner()


async def invoke(settings: Settings, *args: str) -> Result:
    """Run ``anju devices …`` against the test's database (in a thread: the CLI has its loop)."""
    env = {"ANJU_DATABASE_URL": settings.resolved_database_url}
    argv = [*args, "--data-dir", str(settings.data_dir)]
    return await asyncio.to_thread(runner.invoke, app, argv, env=env)


async def root_key_leaks(platform: Platform, tmp_path: Path, root_keys: list[bytes]) -> list[Any]:
    """Where a root key appears in the database's storage, raw or as hex."""
    url = platform.settings.resolved_database_url
    hits: list[Any] = scan_platform_storage(url, [k.hex() for k in root_keys], workdir=tmp_path)
    if platform.db.is_sqlite:
        db_file = Path(url.split("///", 1)[1])
        for path in sqlite_storage_files(db_file):
            data = path.read_bytes()
            hits += [(path, key.hex()) for key in root_keys if key in data]
    return hits


# --- factory -----------------------------------------------------------------------------------
@pytest.mark.req("L14", "R18", "R15", "L13")
async def test_manufacture_command_stores_devices_without_clear_root_keys(
    platform: Platform, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "factory" / "batch-1.json"
    result = await invoke(
        settings, "manufacture", "--product", "lock-x1", "--count", "3", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "3 × lock" in result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    batch = json.loads(out.read_text())
    assert batch["product"] == "lock-x1"
    assert len(batch["devices"]) == 3
    ca = ca_public_key(platform.keys)
    now = int(time.time())  # the CLI runs on the system clock, not the test's
    root_keys = []
    for entry in batch["devices"]:
        assert set(entry) == {
            "device_id", "se_id", "se_dir", "se_pin", "certificate", "ca_public_key_pem",
            "topics", "claim_code",
        }  # fmt: skip
        cert = Certificate.decode(bytes.fromhex(entry["certificate"]))
        cert.verify_as(CertKind.DEVICE, ca, now=now)
        assert (cert.subject, cert.se_id, cert.product) == (
            entry["device_id"],
            entry["se_id"],
            "lock-x1",
        )
        assert entry["topics"]["publish"] == f"anju/v1/dev/{entry['device_id']}/up"
        se = SoftwareSecureElement.open(Path(entry["se_dir"]))
        assert se.public_key == cert.public_key
        assert se.se_id == entry["se_id"]
        row = await device_row(platform, entry["device_id"])
        assert row.status == Status.MANUFACTURED
        assert row.org_id is None
        # The platform's wrapped copy is the SE's root key: the label's claim code matches it.
        async with platform.db.transaction() as session:
            root = await _root_of(DeviceService(platform, session), row)
        assert claim_code(root) == entry["claim_code"]
        root_keys.append(root)
    text = out.read_text()
    assert not any(k.hex() in text or k.hex().upper() in text for k in root_keys)
    assert await root_key_leaks(platform, tmp_path, root_keys) == []
    # Control: the scan does find what is stored in clear (the device ids).
    ids = [e["device_id"] for e in batch["devices"]]
    assert scan_platform_storage(settings.resolved_database_url, ids, workdir=tmp_path) != []
    (entry,) = await audit_entries(platform, "devices.manufactured")
    assert entry.actor == "cli"
    assert json.loads(entry.details) == {"count": 3, "product": "lock-x1"}
    # Never overwrite a factory file.
    again = await invoke(
        settings, "manufacture", "--product", "lock-x1", "--count", "1", "--out", str(out)
    )
    assert again.exit_code != 0


async def _root_of(svc: DeviceService, device: Device) -> bytes:
    from anju.devices.lifecycle import root_key_aad

    assert device.root_key_wrapped is not None
    return svc.keys.unwrap(device.root_key_wrapped, root_key_aad(device.id))


@pytest.mark.req("L14", "R11")
async def test_cli_register_revoke_decommission_and_type_mismatch(
    platform: Platform, settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    a = await tenant(platform, clock, "sa-a", "Org A")
    out = tmp_path / "b.json"
    made = await invoke(
        settings,
        "manufacture",
        "--product",
        "gw-1",
        "--type",
        "gateway",
        "--count",
        "1",
        "--out",
        str(out),
    )
    assert made.exit_code == 0, made.output
    device_id = json.loads(out.read_text())["devices"][0]["device_id"]
    mismatch = await invoke(
        settings,
        "manufacture",
        "--product",
        "gw-1",
        "--type",
        "lock",
        "--count",
        "1",
        "--out",
        str(tmp_path / "c.json"),
    )
    assert mismatch.exit_code == 1
    assert "gateway" in mismatch.output
    assert not (tmp_path / "c.json").exists()
    assert a.admin.org_id is not None
    reg = await invoke(
        settings,
        "register",
        "--device",
        device_id,
        "--org",
        a.admin.org_id,
        "--place-kind",
        "building_entrance",
        "--place-ref",
        "B2",
    )
    assert reg.exit_code == 0, reg.output
    row = await device_row(platform, device_id)
    assert (row.status, row.org_id, row.device_type) == ("registered", a.admin.org_id, "gateway")
    assert (
        await invoke(settings, "revoke", "--device", device_id, "--reason", "stolen")
    ).exit_code == 0
    bad = await invoke(settings, "register", "--device", device_id, "--org", a.admin.org_id)
    assert bad.exit_code == 1
    gone = await invoke(settings, "decommission", "--device", device_id, "--yes")
    assert gone.exit_code == 0, gone.output
    row = await device_row(platform, device_id)
    assert row.status == "decommissioned"
    assert row.root_key_wrapped is None
    assert [e.actor for e in await audit_entries(platform, "devices.decommissioned")] == ["cli"]
    listed = await invoke(settings, "list")
    assert device_id in listed.output
    assert "decommissioned" in listed.output
    pem = await invoke(settings, "ca-key")
    assert pem.output.startswith("-----BEGIN PUBLIC KEY-----")


@pytest.mark.req("R15", "L16")
async def test_gateway_certificate_is_issued_by_the_ca_and_renewed_near_expiry(
    platform: Platform, clock: FixedClock
) -> None:
    certs = GatewayCertificates(platform.keys, clock, platform.settings.audit_origin)
    first = certs.current()
    first.verify_as(
        CertKind.GATEWAY, ca_public_key(platform.keys), now=int(clock.now().timestamp())
    )
    assert first.subject == "gateway.anju.local"
    assert first.public_key == platform.keys.signer("device-gateway").public_key
    assert certs.current() is first
    clock.advance(days=340)  # 25 days left: inside the renewal margin
    second = certs.current()
    assert second.serial != first.serial
    assert second.not_after > first.not_after


# --- dynamic registration (一型一密) ------------------------------------------------------------
async def make_product(platform: Platform, *, dynamic: bool = True) -> bytes:
    async with platform.db.transaction() as session:
        _, secret = await ProvisioningService(platform, session).create_product(
            "meter-m2", "meter", "Meter M2", dynamic_registration=True
        )
        if not dynamic:
            await ProvisioningService(platform, session).set_dynamic_registration("meter-m2", False)
    assert secret is not None
    return secret


def request_for(
    secret: bytes,
    key: SM2PrivateKey,
    *,
    timestamp: int,
    device_id: str | None = None,
    se_id: str | None = None,
    nonce: bytes | None = None,
) -> DynamicRegistration:
    device_id = device_id or random_bytes(16).hex()
    se_id = se_id or random_bytes(16).hex()
    nonce = nonce or random_bytes(16)
    mac = hmac_sm3(secret, proof_message(device_id, se_id, key.public_key.raw, timestamp, nonce))
    return DynamicRegistration(
        "meter-m2", device_id, se_id, key.public_key.raw, timestamp, nonce, mac
    )


async def dynamic(platform: Platform, request: DynamicRegistration) -> DynamicRegistrationResult:
    return await run_device_boundary(
        platform, lambda s: s.register_dynamic(request), ProvisioningService
    )


async def refused(platform: Platform, request: DynamicRegistration, code: str, reason: str) -> None:
    with pytest.raises(AnjuError) as caught:
        await dynamic(platform, request)
    assert caught.value.code == code
    assert caught.value.details.get("reason", reason) == reason


async def product_failures(platform: Platform) -> int:
    async with platform.db.transaction() as session:
        row = (await session.execute(select(DeviceProduct))).scalar_one()
        return row.failure_count


@pytest.mark.req("R18", "L14", "R15")
async def test_dynamic_registration_gives_certificate_and_root_key_for_the_device_only(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    secret = await make_product(platform)
    key = SM2PrivateKey.generate()
    now = int(clock.now().timestamp())
    request = request_for(secret, key, timestamp=now)
    result = await dynamic(platform, request)
    result.certificate.verify_as(CertKind.DEVICE, ca_public_key(platform.keys), now=now)
    assert result.certificate.subject == request.device_id
    assert result.certificate.public_key == key.public_key
    root = key.decrypt(result.root_key_ciphertext)
    assert len(root) == 16
    with pytest.raises(AnjuError):
        SM2PrivateKey.generate().decrypt(result.root_key_ciphertext)
    row = await device_row(platform, request.device_id)
    assert (row.status, row.device_type, row.provisioning) == ("manufactured", "meter", "dynamic")
    # Claimable with the code the device can compute from its root key; the handshake then
    # hands the gateway the same root key.
    a = await tenant(platform, clock, "sa-a", "Org A")
    await as_device_principal(
        platform,
        a.token,
        lambda s, p: s.register_device(p, request.device_id, claim_code=claim_code(root)),
    )
    async with platform.db.transaction() as session:
        svc = DeviceService(platform, session)
        assert await svc.root_key_for_handshake(result.certificate) == root
    assert await root_key_leaks(platform, tmp_path, [root]) == []
    (entry,) = await audit_entries(platform, "devices.provisioned")
    assert entry.outcome == "success"


@pytest.mark.req("R18", "L16")
async def test_dynamic_registration_refusals_are_counted_and_audited(
    platform: Platform, clock: FixedClock
) -> None:
    secret = await make_product(platform)
    key = SM2PrivateKey.generate()
    now = int(clock.now().timestamp())
    # wrong product secret
    await refused(
        platform,
        request_for(random_bytes(32), key, timestamp=now),
        "registration_refused",
        "bad_proof",
    )
    # stale timestamp (the MAC is right)
    stale = now - REGISTRATION_WINDOW_SECONDS - 1
    await refused(
        platform, request_for(secret, key, timestamp=stale), "registration_refused", "stale_time"
    )
    # replayed nonce: the first use succeeds, the second is refused
    first = request_for(secret, key, timestamp=now)
    await dynamic(platform, first)
    replay = request_for(secret, SM2PrivateKey.generate(), timestamp=now, nonce=first.nonce)
    await refused(platform, replay, "registration_refused", "replay")
    # a taken device id (already registered by someone else's key) is refused
    taken = request_for(secret, SM2PrivateKey.generate(), timestamp=now, device_id=first.device_id)
    await refused(platform, taken, "registration_refused", "already_registered")
    assert await product_failures(platform) == 3
    reasons = [
        json.loads(e.details)["reason"]
        for e in await audit_entries(platform, "devices.provisioning.refused")
    ]
    assert reasons == ["bad_proof", "stale_time", "replay", "already_registered"]
    # the device that lost its answer may retry with the same identity and key
    retry = request_for(secret, key, timestamp=now, device_id=first.device_id, se_id=first.se_id)
    again = await dynamic(platform, retry)
    assert key.decrypt(again.root_key_ciphertext) != b""


@pytest.mark.req("R18", "L16")
async def test_dynamic_registration_throttles_a_product_and_refuses_when_disabled(
    platform: Platform, clock: FixedClock
) -> None:
    await make_product(platform)
    key = SM2PrivateKey.generate()
    now = int(clock.now().timestamp())
    for _ in range(MAX_PRODUCT_FAILURES):
        await refused(
            platform,
            request_for(random_bytes(32), key, timestamp=now),
            "registration_refused",
            "bad_proof",
        )
    async with platform.db.transaction() as session:
        secret = await ProvisioningService(platform, session).set_dynamic_registration(
            "meter-m2", True, new_secret=True
        )
    assert secret is not None
    # enabling again resets the counter; make it trip once more to see the throttle
    for _ in range(MAX_PRODUCT_FAILURES):
        await refused(
            platform,
            request_for(random_bytes(32), key, timestamp=now),
            "registration_refused",
            "bad_proof",
        )
    good = request_for(secret, key, timestamp=now)
    await refused(platform, good, "too_many_requests", "throttled")
    clock.advance(seconds=FAILURE_WINDOW_SECONDS + 1)
    later = int(clock.now().timestamp())
    await dynamic(platform, request_for(secret, key, timestamp=later))
    async with platform.db.transaction() as session:
        await ProvisioningService(platform, session).set_dynamic_registration("meter-m2", False)
    await refused(
        platform,
        request_for(secret, SM2PrivateKey.generate(), timestamp=later),
        "registration_refused",
        "disabled",
    )
    async with platform.db.transaction() as session:
        stored = (await session.execute(select(DeviceProduct))).scalar_one()
    assert stored.product_secret_wrapped is not None
    assert secret not in stored.product_secret_wrapped
