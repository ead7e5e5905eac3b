"""Property test helpers: a site → building → unit → room tree built through the service."""

from __future__ import annotations

from dataclasses import dataclass

from anju.platform import Platform
from anju.properties.service import Address, PropertyService

ADDRESS = Address("北京市", "北京市", "朝阳区", "望京街道", "阜通东大街6号", "方恒社区")


@dataclass(frozen=True)
class Tree:
    org_id: str
    site_id: str
    building_id: str
    unit_id: str
    room_id: str


async def property_tree(
    platform: Platform,
    org_id: str,
    *,
    site: str = "安居公寓",
    region_code: str = "110105",
    kind: str = "apartment",
    room: str = "1201",
) -> Tree:
    """One site (区划 ``region_code``) with building 3号楼, unit 2单元 (18 floors) and a room."""
    async with platform.db.transaction() as session:
        svc = PropertyService(platform, session)
        s = await svc.create_site(
            "test", org_id, kind=kind, name=site, region_code=region_code, address=ADDRESS
        )
        b = await svc.create_building("test", org_id, s.id, "3号楼")
        u = await svc.create_unit("test", org_id, b.id, "2单元", floors=18)
        r = await svc.create_room("test", org_id, u.id, number=room, floor=12)
        return Tree(org_id, s.id, b.id, u.id, r.id)


async def bind_room_lock(platform: Platform, tree: Tree, device_id: str) -> None:
    async with platform.db.transaction() as session:
        await PropertyService(platform, session).bind_lock(
            "test", tree.org_id, tree.room_id, device_id
        )


async def site_door_group(platform: Platform, tree: Tree, name: str, *device_ids: str) -> str:
    """A door group of the tree's site holding ``device_ids``; its id."""
    async with platform.db.transaction() as session:
        svc = PropertyService(platform, session)
        group = await svc.create_door_group("test", tree.org_id, "site", tree.site_id, name)
        for device_id in device_ids:
            await svc.add_door("test", tree.org_id, group.id, device_id)
        return group.id
