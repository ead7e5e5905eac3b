"""Helpers for officer and request tests: an organisation with a site in a region and a lock
at a room, people registered there, their access links, and signed unlock records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anju.kit.clock import FixedClock
from anju.people.application import Application
from anju.people.registration import Registrar
from anju.people.rights import SubjectRights
from anju.people.service import Actor
from anju.people.verification.base import StaffCheck
from anju.platform import Platform
from anju.properties.service import Address, PropertyService
from tests.support.accounts import Admin, as_principal, login_token, make_member, step_up
from tests.support.http import bearer
from tests.support.records import Door, Feed, door, signed, unlock_rec


@dataclass
class Housing:
    """An organisation (its security admin), its lock at a room, and the site's region."""

    door: Door
    region: str
    site_id: str

    @property
    def org_id(self) -> str:
        return self.door.org_id

    @property
    def lock_id(self) -> str:
        return self.door.lock.device_id


async def housing(
    platform: Platform, clock: FixedClock, tmp_path: Path, *, login: str, org: str, region: str
) -> Housing:
    """A new organisation with a site in ``region`` and a lock bound to room 301."""
    d = await door(platform, clock, tmp_path, login=login, org=org, room="301")
    async with platform.db.transaction() as session:
        site = await PropertyService(platform, session).create_site(
            "test", d.org_id, kind="hotel", name=f"{org} 酒店", region_code=region,
            address=Address("北京市", "北京市", "朝阳区"),
        )  # fmt: skip
    return Housing(d, region, site.id)


async def room_with_lock(platform: Platform, h: Housing) -> str:
    """Building 1, unit 1, room 301 of the site, with the organisation's lock bound to it."""
    async with platform.db.transaction() as session:
        service = PropertyService(platform, session)
        building = await service.create_building("test", h.org_id, h.site_id, "1号楼")
        unit = await service.create_unit("test", h.org_id, building.id, "1单元")
        room = await service.create_room("test", h.org_id, unit.id, number="301", floor=3)
        await service.bind_lock("test", h.org_id, room.id, h.lock_id)
    return room.id


@dataclass
class Registered:
    person_id: str
    subject_id: str


async def register(platform: Platform, org_id: str, application: Application) -> Registered:
    """``application`` registered by a front-desk clerk of ``org_id`` (original document seen)."""
    async with platform.db.transaction() as session:
        result = await Registrar(platform, session).register(
            Actor("account:desk-test", org_id), application, StaffCheck(True)
        )
    assert result.person_id is not None
    return Registered(result.person_id, result.subject_id)


async def access_link(platform: Platform, org_id: str, person_id: str) -> str:
    """A subject access link for the person, as the front desk hands it over."""
    async with platform.db.transaction() as session:
        link = await SubjectRights(platform, session).issue_link(
            Actor("account:desk-test", org_id), person_id
        )
    return link.token


async def unlocks(h: Housing, platform: Platform, *at_ms_subject: tuple[int, str]) -> None:
    """Granted unlock records at the lock, signed by it and fed through the gateway batcher."""
    feed = Feed(platform)
    for at_ms, subject in at_ms_subject:
        record = unlock_rec(h.door.lock, at_ms, subject=subject, cred=f"cred-{subject[-6:]}")
        await feed.send(h.lock_id, "access.unlock", signed(h.door.lock, record))
    await feed.stop()


async def member_with_id(
    platform: Platform, clock: FixedClock, admin: Admin, login: str, role: str
) -> tuple[str, dict[str, str]]:
    """A new account of ``admin``'s organisation holding ``role``: its id and bearer headers."""
    token = await login_token(platform, admin.login)
    account_id, member = await make_member(platform, clock, admin, token, login)
    await step_up(platform, clock, admin, token)
    await as_principal(platform, token, lambda s, p: s.grant_role(p, account_id, role))
    return account_id, bearer(member)
