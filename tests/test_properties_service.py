"""PropertyService on both backends: the tree and its standard address, room locks and common
doors, jurisdictions, bad input refused with nothing half-written, deletes refused while in use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import func, select

from anju.errors import AnjuError
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.properties.models import Building, DoorGroup, Room, RoomLock, Site, Unit
from anju.properties.service import Address, PropertyService, RoomDoors
from tests.support.access import AccessWorld, access_world
from tests.support.properties import ADDRESS, bind_room_lock, property_tree, site_door_group
from tests.support.registry import PIN, audit_entries, claim, manufacture

T = TypeVar("T")
INJECTIONS = [
    "1'; DROP TABLE property_rooms; --",
    "<script>alert(1)</script>",
    "a\x00b",
    "${jndi:x}",
]


@pytest.fixture
async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> AccessWorld:
    return await access_world(platform, clock, tmp_path)


async def svc_call(platform: Platform, work: Callable[[PropertyService], Awaitable[T]]) -> T:
    async with platform.db.transaction() as session:
        return await work(PropertyService(platform, session))


async def refused(platform: Platform, work: Callable[[PropertyService], Awaitable[object]]) -> str:
    with pytest.raises(AnjuError) as caught:
        await svc_call(platform, work)
    return caught.value.code


async def count(platform: Platform, model: type[object]) -> int:
    async with platform.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


@pytest.mark.req("R10", "R13", "L1")
async def test_tree_address_and_doors_of_a_room(platform: Platform, world: AccessWorld) -> None:
    tree = await property_tree(platform, world.org_a)
    await bind_room_lock(platform, tree, world.room.device_id)
    await site_door_group(platform, tree, "东门 / east gate", world.entrance.device_id)

    doors = await svc_call(platform, lambda s: s.doors_of_room(tree.org_id, tree.room_id))
    assert doors == RoomDoors((world.room.device_id,), (world.entrance.device_id,))
    address = await svc_call(platform, lambda s: s.standard_address(tree.org_id, tree.room_id))
    # The city is left out when it repeats the province (a municipality).
    assert address == "北京市朝阳区望京街道阜通东大街6号方恒社区3号楼2单元1201室"
    room = await svc_call(platform, lambda s: s.room(tree.org_id, tree.room_id))
    assert (room.number, room.floor, room.kind, room.capacity) == ("1201", 12, "standard", 2)

    # Officers' jurisdictions: prefixes of region codes (province, city, county).
    other = await property_tree(platform, world.org_b, region_code="310104", site="徐汇公寓")
    assert await svc_call(platform, lambda s: s.orgs_in_regions(["11"])) == {tree.org_id}
    assert await svc_call(platform, lambda s: s.orgs_in_regions(["1101", "3101"])) == {
        tree.org_id,
        other.org_id,
    }
    assert await svc_call(platform, lambda s: s.orgs_in_regions(["110106"])) == set()
    assert await refused(platform, lambda s: s.orgs_in_regions(["11%"])) == "invalid_region_code"

    # Another organisation's room is as unknown as a room that does not exist.
    for org, room_id in ((world.org_b, tree.room_id), (tree.org_id, "nope")):
        code = await refused(platform, lambda s, o=org, r=room_id: s.doors_of_room(o, r))
        assert code == "room_not_found"
    assert [e.action for e in await audit_entries(platform, "properties.room.lock_bound")]


@pytest.mark.req("R10", "R13")
async def test_a_common_door_of_unit_building_and_site_reaches_the_room(
    platform: Platform, clock: FixedClock, world: AccessWorld, tmp_path: Path
) -> None:
    tree = await property_tree(platform, world.org_a)
    extra = await manufacture(platform, tmp_path, count=2)
    for lock in extra:
        lock.se.verify_pin(PIN)
        await claim(platform, world.a, lock)
    for scope, scope_id, device_id in (
        ("unit", tree.unit_id, extra[0].device_id),
        ("building", tree.building_id, extra[1].device_id),
        ("site", tree.site_id, world.entrance.device_id),
    ):
        group = await svc_call(
            platform,
            lambda s, sc=scope, i=scope_id: s.create_door_group("t", tree.org_id, sc, i, "门"),
        )
        await svc_call(
            platform, lambda s, g=group.id, d=device_id: s.add_door("t", tree.org_id, g, d)
        )
    doors = await svc_call(platform, lambda s: s.doors_of_room(tree.org_id, tree.room_id))
    assert doors.room_locks == ()
    assert set(doors.common_doors) == {
        extra[0].device_id,
        extra[1].device_id,
        world.entrance.device_id,
    }
    # A room of another unit of the same building shares the building and site doors only.
    unit2 = await svc_call(
        platform, lambda s: s.create_unit("t", tree.org_id, tree.building_id, "1单元")
    )
    room2 = await svc_call(
        platform, lambda s: s.create_room("t", tree.org_id, unit2.id, number="101", floor=1)
    )
    doors2 = await svc_call(platform, lambda s: s.doors_of_room(tree.org_id, room2.id))
    assert set(doors2.common_doors) == {extra[1].device_id, world.entrance.device_id}


@pytest.mark.req("R10", "R13", "L13")
async def test_lock_binding_rules(
    platform: Platform, clock: FixedClock, world: AccessWorld, tmp_path: Path
) -> None:
    tree = await property_tree(platform, world.org_a)
    org = tree.org_id
    # Another organisation's lock, or no lock at all: not found.
    for device_id in (world.other.device_id, "f" * 32, "x" * 500):
        code = await refused(
            platform, lambda s, d=device_id: s.bind_lock("t", org, tree.room_id, d)
        )
        assert code == "lock_not_found"
    await bind_room_lock(platform, tree, world.room.device_id)
    # A lock serves one room: binding it again (here or elsewhere) is refused.
    room2 = await svc_call(
        platform, lambda s: s.create_room("t", org, tree.unit_id, number="1202", floor=12)
    )
    for room_id in (tree.room_id, room2.id):
        code = await refused(
            platform, lambda s, r=room_id: s.bind_lock("t", org, r, world.room.device_id)
        )
        assert code == "lock_already_bound"
    # A common door is not a room lock, nor the other way round.
    group_id = await site_door_group(platform, tree, "大门", world.entrance.device_id)
    code = await refused(
        platform, lambda s: s.bind_lock("t", org, room2.id, world.entrance.device_id)
    )
    assert code == "lock_already_bound"
    code = await refused(platform, lambda s: s.add_door("t", org, group_id, world.room.device_id))
    assert code == "lock_already_bound"
    # At most four locks per room.
    extra = await manufacture(platform, tmp_path, count=4)
    for lock in extra:
        await claim(platform, world.a, lock)
    for lock in extra[:3]:
        await svc_call(platform, lambda s, d=lock.device_id: s.bind_lock("t", org, tree.room_id, d))
    code = await refused(
        platform, lambda s: s.bind_lock("t", org, tree.room_id, extra[3].device_id)
    )
    assert code == "room_lock_limit"
    assert await count(platform, RoomLock) == 4
    # Unbinding frees the lock for another room.
    await svc_call(platform, lambda s: s.unbind_lock("t", org, tree.room_id, world.room.device_id))
    await svc_call(platform, lambda s: s.bind_lock("t", org, room2.id, world.room.device_id))
    code = await refused(
        platform, lambda s: s.unbind_lock("t", org, tree.room_id, world.room.device_id)
    )
    assert code == "lock_not_found"
    assert len(await audit_entries(platform, "properties.room.lock_unbound")) == 1


@pytest.mark.req("R10", "R13")
async def test_bad_input_is_refused_and_nothing_is_half_written(
    platform: Platform, world: AccessWorld
) -> None:
    org = world.org_a
    tree = await property_tree(platform, org)

    def site(**change: object) -> Callable[[PropertyService], Awaitable[Site]]:
        args: dict[str, object] = {
            "kind": "hotel",
            "name": "新酒店",
            "region_code": "440305",
            "address": Address("广东省", "深圳市", "南山区"),
        }
        args.update(change)
        return lambda s: s.create_site("t", org, **args)  # type: ignore[arg-type]

    for code_value in ("44030", "4403050", "440000", "990101", "44O305", " 440305", "４４０３０５"):
        assert await refused(platform, site(region_code=code_value)) == "invalid_region_code"
    assert await refused(platform, site(kind="castle")) == "invalid_input"
    assert await refused(platform, site(name="x" * 101)) == "invalid_name"
    assert await refused(platform, site(name="  ")) == "invalid_name"
    assert await refused(platform, site(name="安居公寓")) == "name_taken"
    assert await refused(platform, site(address=Address(""))) == "invalid_name"
    assert (
        await refused(platform, site(address=Address("广东省", road="y" * 101))) == "invalid_name"
    )
    for text in INJECTIONS:
        assert await refused(platform, site(name=text)) == "invalid_name"
        code = await refused(
            platform, lambda s, t=text: s.create_room("t", org, tree.unit_id, number=t, floor=1)
        )
        assert code == "invalid_name"
    # Room: duplicate number, floor outside the unit, capacity, kind.
    room = lambda **kw: lambda s: s.create_room("t", org, tree.unit_id, **kw)  # noqa: E731
    assert await refused(platform, room(number="1201", floor=12)) == "room_number_taken"
    assert await refused(platform, room(number="1901", floor=19)) == "invalid_input"
    assert await refused(platform, room(number="1301", floor=13, capacity=0)) == "invalid_input"
    assert await refused(platform, room(number="1302", floor=13, kind="cave")) == "invalid_input"
    code = await refused(platform, lambda s: s.create_unit("t", org, tree.building_id, "u", 0))
    assert code == "invalid_input"
    code = await refused(
        platform, lambda s: s.create_door_group("t", org, "street", tree.site_id, "g")
    )
    assert code == "invalid_input"
    code = await refused(
        platform, lambda s: s.create_door_group("t", org, "unit", tree.site_id, "g")
    )
    assert code == "unit_not_found"
    # Nothing of the refused calls was written.
    for model in (Site, Building, Unit, Room, DoorGroup):
        assert await count(platform, model) == (0 if model is DoorGroup else 1)
    stored = await svc_call(platform, lambda s: s.site(org, tree.site_id))
    assert (stored.name, stored.region_code, stored.district) == (
        "安居公寓",
        "110105",
        ADDRESS.district,
    )


@pytest.mark.req("R10", "R13")
async def test_delete_and_rename_respect_what_is_inside(
    platform: Platform, world: AccessWorld
) -> None:
    tree = await property_tree(platform, world.org_a)
    org = tree.org_id
    await bind_room_lock(platform, tree, world.room.device_id)
    group_id = await site_door_group(platform, tree, "大门", world.entrance.device_id)
    for work in (
        lambda s: s.delete_site("t", org, tree.site_id),
        lambda s: s.delete_building("t", org, tree.building_id),
        lambda s: s.delete_unit("t", org, tree.unit_id),
        lambda s: s.delete_room("t", org, tree.room_id),
        lambda s: s.delete_door_group("t", org, group_id),
    ):
        assert await refused(platform, work) == "property_not_empty"
    # Another organisation cannot see, rename or delete any of it.
    assert await refused(
        platform, lambda s: s.rename_site("t", world.org_b, tree.site_id, "x")
    ) == ("site_not_found")
    assert await refused(platform, lambda s: s.delete_room("t", world.org_b, tree.room_id)) == (
        "room_not_found"
    )
    # Renaming: a free name works, a taken one is refused.
    await svc_call(
        platform, lambda s: s.create_room("t", org, tree.unit_id, number="1202", floor=12)
    )
    code = await refused(platform, lambda s: s.rename_room("t", org, tree.room_id, "1202"))
    assert code == "room_number_taken"
    renamed = await svc_call(platform, lambda s: s.rename_room("t", org, tree.room_id, "1203"))
    assert renamed.number == "1203"
    await svc_call(platform, lambda s: s.rename_building("t", org, tree.building_id, "5号楼"))
    address = await svc_call(platform, lambda s: s.standard_address(org, tree.room_id))
    assert address.endswith("5号楼2单元1203室")
    # Emptied from the bottom up, everything can go.
    await svc_call(platform, lambda s: s.unbind_lock("t", org, tree.room_id, world.room.device_id))
    await svc_call(platform, lambda s: s.remove_door("t", org, group_id, world.entrance.device_id))
    await svc_call(platform, lambda s: s.delete_door_group("t", org, group_id))
    for room in await svc_call(platform, lambda s: s.rooms(org, tree.unit_id)):
        await svc_call(platform, lambda s, r=room.id: s.delete_room("t", org, r))
    await svc_call(platform, lambda s: s.delete_unit("t", org, tree.unit_id))
    await svc_call(platform, lambda s: s.delete_building("t", org, tree.building_id))
    await svc_call(platform, lambda s: s.delete_site("t", org, tree.site_id))
    assert await count(platform, Site) == 0
    assert len(await audit_entries(platform, "properties.site.deleted")) == 1
