"""Firmware test helpers: packages signed like `anju firmware sign`, a fleet of registered devices
reporting a version, rollouts driven through the service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.device.client import DeviceIdentity
from anju.device.faces import Camera
from anju.device.lock import LockConfig, LockFirmware
from anju.device.ota import OtaOptions
from anju.devices.ca import ca_public_key, certify_firmware_signer, platform_firmware_certificate
from anju.devices.provisioning import FactoryRecord, ProvisioningService
from anju.devices.service import DeviceService
from anju.face.engine import FaceEngine
from anju.firmware.models import FirmwareRolloutDevice
from anju.firmware.service import FirmwareService, run_firmware_boundary
from anju.gateway.client import BrokerAddress
from anju.kit.crypto import SM2PrivateKey, random_bytes
from anju.kit.keyring import Signer
from anju.platform import Platform
from anju.protocol.certificates import Certificate, CertKind, issue_certificate
from anju.protocol.firmware import ANY_PRODUCT, Package, sign_package
from tests.support.device_harness import fast_options
from tests.support.mqtt_device import Made, make_org
from tests.vectors import protocol as vectors

T = TypeVar("T")
PRODUCT = "lock-x1"
FACTORY_FIRMWARE = "anju-lock/0.1.0"


def now_s(platform: Platform) -> int:
    return int(platform.clock.now().timestamp())


def image_bytes(size: int, seed: bytes = b"fw") -> bytes:
    """A deterministic test image of ``size`` bytes."""
    block = (seed * 64)[:64]
    return (block * (size // len(block) + 1))[:size]


def platform_package(
    platform: Platform,
    image: bytes,
    version: str,
    *,
    product: str = PRODUCT,
    min_from: str | None = None,
    signer: Signer | None = None,
    certificate: Certificate | None = None,
) -> Package:
    """A package signed with the keyring's "firmware" key (or ``signer`` + ``certificate``)."""
    keys = platform.keys
    return sign_package(
        image,
        product=product,
        version=version,
        created_ms=now_s(platform) * 1000,
        signer=signer or keys.signer("firmware"),
        certificate=certificate
        or platform_firmware_certificate(keys, origin="anju.test", now=now_s(platform)),
        min_from=min_from,
    )


def offline_signer(
    platform: Platform, *, product: str = PRODUCT
) -> tuple[SM2PrivateKey, Certificate]:
    """An offline signing key certified by the platform's device CA for ``product``."""
    key = SM2PrivateKey.generate()
    cert = certify_firmware_signer(
        platform.keys,
        key.public_key,
        name="release.vendor.test",
        product=product,
        now=now_s(platform),
    )
    return key, cert


async def registered_fleet(
    platform: Platform,
    count: int,
    *,
    org_id: str | None = None,
    product: str = PRODUCT,
    firmware: str | None = FACTORY_FIRMWARE,
) -> tuple[str, list[str]]:
    """``count`` devices registered to ``org_id`` (a new organisation by default) that reported
    ``firmware``; (org id, device ids). No secure elements: for platform-side tests."""
    org_id = org_id or await make_org(platform, f"Org {random_bytes(4).hex()}")
    records = [
        FactoryRecord(
            random_bytes(16).hex(),
            random_bytes(16).hex(),
            SM2PrivateKey.generate().public_key,
            random_bytes(16),
        )
        for _ in range(count)
    ]
    async with platform.db.transaction() as session:
        provisioning = ProvisioningService(platform, session)
        await provisioning.product_for_manufacture(product, "lock")
        devices = await provisioning.import_factory_records(product, records)
        registry = DeviceService(platform, session)
        for device in devices:
            await registry.register_device_as_operator(device.id, org_id)
            if firmware is not None:
                await registry.record_state(device.id, firmware_version=firmware)
    return org_id, [d.id for d in devices]


async def firmware(platform: Platform, work: Callable[[FirmwareService], Awaitable[T]]) -> T:
    """Run ``work`` with a FirmwareService in one boundary (refusal effects committed)."""
    return await run_firmware_boundary(platform, work)


async def upload(platform: Platform, package: Package) -> str:
    """Upload ``package`` as the CLI does; its id."""

    async def work(svc: FirmwareService) -> str:
        return (await svc.upload("cli", package.encode())).id

    return await firmware(platform, work)


async def device_states(
    platform: Platform, rollout_id: str
) -> dict[str, tuple[int, str, str | None]]:
    """device id → (stage, state, code) of a rollout."""
    async with platform.db.transaction() as session:
        rows = await session.execute(
            select(FirmwareRolloutDevice).where(FirmwareRolloutDevice.rollout_id == rollout_id)
        )
        return {r.device_id: (r.stage, r.state, r.code) for r in rows.scalars()}


def reference_lock(
    made: Made,
    platform: Platform,
    address: BrokerAddress,
    data_dir: Path,
    *,
    ota: OtaOptions | None = None,
    camera: Camera | None = None,
    face_engine: FaceEngine | None = None,
) -> LockFirmware:
    """The reference lock firmware for ``made`` on ``address``, on the platform's clock
    (with a camera and the shared face engine for the face tests)."""
    identity = DeviceIdentity(made.device_id, made.certificate, ca_public_key(platform.keys))
    return LockFirmware(
        identity,
        made.se,
        data_dir,
        options=fast_options(host=address.host, port=address.port),
        config=LockConfig(ota=ota or OtaOptions(chunk_timeout_s=2.0)),
        now_ms=lambda: int(platform.clock.now().timestamp() * 1000),
        camera=camera,
        face_engine=FaceEngine if face_engine is None else (lambda: face_engine),
    )


async def poll(
    platform: Platform, check: Callable[[AsyncSession], Awaitable[bool]], within: float = 20.0
) -> None:
    """Wait until ``check`` (run in a transaction) holds; TimeoutError otherwise."""
    async with asyncio.timeout(within):
        while True:
            async with platform.db.transaction() as session:
                if await check(session):
                    return
            await asyncio.sleep(0.1)


def vector_signer_cert(
    *,
    issuer: SM2PrivateKey | None = None,
    key: SM2PrivateKey | None = None,
    kind: CertKind = CertKind.FIRMWARE,
    product: str = ANY_PRODUCT,
    not_after: int = vectors.NOT_AFTER,
) -> Certificate:
    """A signer certificate from the worked example's CA (or ``issuer``) for the example's
    firmware key (or ``key``); the other fields may be varied for negative tests."""
    return issue_certificate(
        issuer or SM2PrivateKey(vectors.CA_PRIVATE),
        kind=kind,
        subject=vectors.FIRMWARE_SIGNER_NAME,
        se_id="",
        product=product,
        public_key=(key or SM2PrivateKey(vectors.FIRMWARE_PRIVATE)).public_key,
        not_before=vectors.NOT_BEFORE,
        not_after=not_after,
    )
