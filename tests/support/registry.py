"""Device registry helpers: the factory step, tenants claiming devices, reading stored rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select

from anju.accounts.principal import Principal
from anju.accounts.service import AccountService
from anju.audit.models import AuditEntry
from anju.device.secure_element import SoftwareSecureElement
from anju.devices.lifecycle import claim_code
from anju.devices.models import Device
from anju.devices.provisioning import FactoryRecord, ProvisioningService
from anju.devices.service import DeviceService, Place, run_device_boundary
from anju.kit.clock import FixedClock
from anju.kit.crypto import random_bytes
from anju.platform import Platform
from anju.protocol.certificates import Certificate
from tests.support.accounts import Admin, login_token, make_admin, step_up

T = TypeVar("T")
PIN = b"factory-pin-1234"


@dataclass
class Made:
    """A device as the factory step leaves it: id, root key, its SE and its certificate."""

    device_id: str
    root_key: bytes
    se: SoftwareSecureElement
    certificate: Certificate


async def manufacture(
    platform: Platform, tmp_path: Path, count: int = 1, product: str = "lock-x1"
) -> list[Made]:
    """Factory step through the service (the CLI test covers the command itself)."""
    made = []
    for _ in range(count):
        device_id = random_bytes(16).hex()
        se, record = SoftwareSecureElement.manufacture(
            tmp_path / "se" / device_id, device_id=device_id, pin=PIN
        )
        made.append((se, record))
    async with platform.db.transaction() as session:
        svc = ProvisioningService(platform, session)
        await svc.product_for_manufacture(product, "lock")
        devices = await svc.import_factory_records(
            product,
            [FactoryRecord(r.device_id, r.se_id, r.public_key, r.root_key) for _, r in made],
        )
    return [
        Made(d.id, r.root_key, se, Certificate.decode(d.certificate))
        for d, (se, r) in zip(devices, made, strict=True)
    ]


async def as_device_principal(
    platform: Platform, token: str, work: Callable[[DeviceService, Principal], Awaitable[T]]
) -> T:
    """Run ``work`` in the device service's boundary as the holder of ``token``."""

    async def go(svc: DeviceService) -> T:
        principal = await AccountService(platform, svc.session).authenticate(token)
        return await work(svc, principal)

    return await run_device_boundary(platform, go, DeviceService)


async def device_row(platform: Platform, device_id: str) -> Device:
    async with platform.db.transaction() as session:
        device = await session.get(Device, device_id)
        assert device is not None
        return device


async def audit_entries(platform: Platform, action: str) -> list[AuditEntry]:
    async with platform.db.transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == action)
        return list((await session.execute(query.order_by(AuditEntry.leaf_index))).scalars())


@dataclass
class Tenant:
    admin: Admin
    token: str


async def tenant(platform: Platform, clock: FixedClock, login: str, org: str) -> Tenant:
    """A security administrator of a new organisation, signed in with a fresh second factor."""
    admin = await make_admin(platform, login=login, org=org)
    token = await login_token(platform, login)
    await step_up(platform, clock, admin, token)
    return Tenant(admin, token)


async def claim(platform: Platform, t: Tenant, made: Made, place: Place | None = None) -> Device:
    """The tenant claims ``made`` with the code on its label."""
    return await as_device_principal(
        platform,
        t.token,
        lambda s, p: s.register_device(
            p, made.device_id, claim_code=claim_code(made.root_key), place=place
        ),
    )
