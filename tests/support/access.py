"""Access-control test helpers: two organisations with locks in places, an access manager with
a second factor, lock-signed receipts, and reading the command outbox."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from sqlalchemy import select

from anju.access.credentials.receipts import apply_signed_receipt
from anju.access.grants import DoorSelector, GrantSpec
from anju.accounts import totp
from anju.devices.command_models import DeviceCommand
from anju.devices.service import Place
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.access import sign_record
from tests.support.accounts import Admin, as_principal, login_token, make_member_with_role
from tests.support.registry import PIN, Made, Tenant, claim, manufacture, tenant


@dataclass
class Manager:
    """An account holding ``property_manager`` (access.manage) with a TOTP factor."""

    token: str
    secret: str
    account_id: str


@dataclass
class AccessWorld:
    a: Tenant
    b: Tenant
    room: Made  # org A, room 101
    entrance: Made  # org A, building entrance B1
    other: Made  # org B, room 101

    @property
    def org_a(self) -> str:
        assert self.a.admin.org_id is not None
        return self.a.admin.org_id

    @property
    def org_b(self) -> str:
        assert self.b.admin.org_id is not None
        return self.b.admin.org_id


async def access_world(platform: Platform, clock: FixedClock, tmp_path: Path) -> AccessWorld:
    made = await manufacture(platform, tmp_path, count=3)
    for lock in made:
        lock.se.verify_pin(PIN)  # key operations (decrypt, sign) need the PIN first
    a = await tenant(platform, clock, "sa-a", "Hotel A")
    b = await tenant(platform, clock, "sa-b", "Hotel B")
    await claim(platform, a, made[0], Place("room", "101"))
    await claim(platform, a, made[1], Place("building_entrance", "B1"))
    await claim(platform, b, made[2], Place("room", "101"))
    return AccessWorld(a, b, made[0], made[1], made[2])


async def manager(
    platform: Platform, clock: FixedClock, admin: Admin, login: str, role: str = "property_manager"
) -> Manager:
    """A member of ``admin``'s organisation with ``role`` and an enrolled TOTP factor."""
    admin_token = await login_token(platform, admin.login)
    token = await make_member_with_role(platform, clock, admin, admin_token, login, role)
    uri = await as_principal(platform, token, lambda s, p: s.enrol_totp(p))
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    code = totp.code_at(secret, clock.now())
    await as_principal(platform, token, lambda s, p: s.confirm_totp(p, code))
    account = await as_principal(platform, token, lambda s, p: s.own_account(p))
    return Manager(token, secret, account.id)


def stay(
    subject: str = "guest-1", person_type: str = "guest", days: float = 2, **doors: Any
) -> GrantSpec:
    """A grant spec (explicit doors given as ``device_ids=(…)`` or a place selector)."""
    selector = DoorSelector(
        tuple(doors["device_ids"]) if "device_ids" in doors else None,
        doors.get("place_kind"),
        doors.get("place_ref"),
    )
    until = None if days == 0 else FixedClock().now() + timedelta(days=days)
    return GrantSpec(subject, person_type, selector, valid_until=until)


async def commands_of(
    platform: Platform, device_id: str, name: str | None = None
) -> list[DeviceCommand]:
    async with platform.db.transaction() as session:
        query = select(DeviceCommand).where(DeviceCommand.device_id == device_id)
        if name is not None:
            query = query.where(DeviceCommand.name == name)
        return list((await session.execute(query.order_by(DeviceCommand.seq))).scalars())


def args_of(command: DeviceCommand) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(command.args)
    return value


def receipt(
    lock: Made,
    command: DeviceCommand,
    op: str,
    state: str,
    *,
    cred: str | None = None,
    subject: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """The ``data`` of an ``access.receipt`` event signed by ``lock``'s SE."""
    record = {
        "dev": lock.device_id,
        "at": 1,
        "cmd": command.id,
        "op": op,
        "cred": cred,
        "subject": subject,
        "state": state,
        "code": code,
    }
    return sign_record(record, sign=lock.se.sign)


async def deliver_receipt(
    platform: Platform, lock: Made, data: dict[str, Any], event_id: str = "e1"
) -> bool:
    """What the gateway does with a receipt event: verify with the registry key, apply."""
    async with platform.db.transaction() as session:
        return await apply_signed_receipt(
            platform, session, device_id=lock.device_id, event_id=event_id, data=data
        )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
