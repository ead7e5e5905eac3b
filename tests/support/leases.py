"""Lease test helpers: a room with a lock and a common door in organisation A of
``access_world``, and tenants registered through ``anju.people`` (staff-checked documents)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from anju.kit.clock import FixedClock
from anju.leases.service import LeaseService, LeaseTerms, LeaseView
from anju.people.registration import Registrar
from anju.people.service import Actor
from anju.people.verification.base import StaffCheck
from anju.platform import Platform
from tests.support.access import AccessWorld, access_world
from tests.support.people import people
from tests.support.properties import Tree, bind_room_lock, property_tree, site_door_group


@dataclass
class LeaseWorld:
    access: AccessWorld
    tree: Tree
    tenants: list[str]  # subject ids

    @property
    def org(self) -> str:
        return self.tree.org_id


async def register_tenants(platform: Platform, org_id: str, count: int, seed: int = 6) -> list[str]:
    subjects = []
    for application in people(count, seed):
        async with platform.db.transaction() as session:
            result = await Registrar(platform, session).register(
                Actor("account:desk", org_id),
                application,
                StaffCheck(original_document_checked=True),
            )
        assert result.outcome == "registered", result
        subjects.append(result.subject_id)
    return subjects


async def lease_world(
    platform: Platform, clock: FixedClock, tmp_path: Path, tenants: int = 1
) -> LeaseWorld:
    """Org A's room 1201 with its lock bound and the entrance as a site door group."""
    world = await access_world(platform, clock, tmp_path)
    tree = await property_tree(platform, world.org_a)
    await bind_room_lock(platform, tree, world.room.device_id)
    await site_door_group(platform, tree, "大门", world.entrance.device_id)
    return LeaseWorld(world, tree, await register_tenants(platform, world.org_a, tenants))


def terms(w: LeaseWorld, **change: object) -> LeaseTerms:
    """A year from 2026-01-01 at 3,000.00 yuan a month, due on the 5th, 5 days' grace."""
    values: dict[str, object] = {
        "room_id": w.tree.room_id,
        "tenants": tuple(w.tenants),
        "start_date": date(2026, 1, 1),
        "end_date": date(2026, 12, 31),
        "monthly_rent_fen": 300_000,
        "due_day": 5,
    }
    values.update(change)
    return LeaseTerms(**values)  # type: ignore[arg-type]


async def active_lease(platform: Platform, w: LeaseWorld, **change: object) -> LeaseView:
    async with platform.db.transaction() as session:
        svc = LeaseService(platform, session)
        view = await svc.create("test", w.org, terms(w, **change))
        return await svc.activate("test", w.org, view.lease.id)
