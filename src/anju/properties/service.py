"""Sites, buildings, units, rooms, room locks and door groups of one organisation, audited.

Services flush, the caller commits. Every read and write is scoped to ``org_id``: another
organisation's ids are "not found", exactly like ids that do not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import AuditLog
from anju.db import new_id
from anju.devices.models import Device
from anju.errors import InvalidInput, NotFound
from anju.platform import Platform
from anju.properties.models import Building, DoorGroup, DoorGroupDoor, Room, RoomLock, Site, Unit
from anju.properties.repository import PropertiesRepository, Row
from anju.properties.rules import (
    MAX_CAPACITY,
    MAX_DOORS_PER_GROUP,
    MAX_FLOORS,
    MAX_LOCKS_PER_ROOM,
    MIN_FLOOR,
    BuildingNotFound,
    DoorGroupNotFound,
    LockAlreadyBound,
    LockNotFound,
    NameTaken,
    NotEmpty,
    RoomKind,
    RoomLockLimit,
    RoomNotFound,
    RoomNumberTaken,
    Scope,
    SiteKind,
    SiteNotFound,
    UnitNotFound,
    check_name,
    check_range,
    check_region_code,
    check_region_prefix,
)

_NOT_FOUND: dict[type[object], tuple[type[NotFound], str]] = {
    Site: (SiteNotFound, "场所不存在 / no such site"),
    Building: (BuildingNotFound, "楼栋不存在 / no such building"),
    Unit: (UnitNotFound, "单元不存在 / no such unit"),
    Room: (RoomNotFound, "房间不存在 / no such room"),
    DoorGroup: (DoorGroupNotFound, "门组不存在 / no such door group"),
}
_KIND = {Site: "site", Building: "building", Unit: "unit", Room: "room", DoorGroup: "door_group"}


@dataclass(frozen=True)
class RoomDoors:
    """Device ids of a room's own locks and of its common doors (unit, building, site groups)."""

    room_locks: tuple[str, ...]
    common_doors: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.room_locks + self.common_doors


@dataclass(frozen=True)
class Address:
    """标准地址 parts of a site, above the building (all but the province may be empty)."""

    province: str
    city: str = ""
    district: str = ""
    town: str = ""
    road: str = ""
    community: str = ""

    def checked(self) -> Address:
        return Address(
            check_name(self.province, "province"),
            check_name(self.city, "city", required=False),
            check_name(self.district, "district", required=False),
            check_name(self.town, "town", required=False),
            check_name(self.road, "road", required=False),
            check_name(self.community, "community", required=False),
        )


def _kind(value: str, kinds: type[SiteKind] | type[RoomKind], field: str) -> str:
    try:
        return kinds(value).value
    except ValueError:
        raise InvalidInput(
            f"未知类型 / unknown {field} {value[:32]!r}",
            details={"field": field, "known": [k.value for k in kinds]},
        ) from None


def _room_suffix(number: str) -> str:
    return number if number.endswith(("室", "房", "号")) else f"{number}室"


class PropertyService:
    """Property work of one transaction (the caller commits)."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self.platform = platform
        self.session = session
        self.clock = platform.clock
        self.repo = PropertiesRepository(session)
        self.audit = AuditLog(platform)

    # --- shared helpers --------------------------------------------------------------------
    async def _get(
        self, model: type[Row], org_id: str, row_id: str, *, for_update: bool = False
    ) -> Row:
        row = None
        if 0 < len(row_id) <= 36:
            row = await self.repo.one(model, org_id, row_id, for_update=for_update)
        if row is None:
            error, message = _NOT_FOUND[model]
            raise error(message, details={"id": row_id[:64]})
        return row

    async def _record(
        self, action: str, actor: str, org_id: str, row: Row, **details: str | int | None
    ) -> None:
        await self.audit.record(
            self.session,
            action=f"properties.{action}",
            actor=actor,
            org_id=org_id,
            target=f"{_KIND[type(row)]}:{row.id}",
            details={"id": row.id, **details},
        )

    async def _renamed(self, actor: str, org_id: str, row: Row, field: str) -> Row:
        row.updated_at = self.clock.now()
        await self.session.flush()
        await self._record(f"{_KIND[type(row)]}.renamed", actor, org_id, row, field=field)
        return row

    async def _deleted(self, actor: str, org_id: str, row: Row, blockers: int) -> None:
        if blockers:
            raise NotEmpty(
                "仍有下级或绑定，不能删除 / still holds rooms, children or bindings",
                details={"id": row.id, "blocking": blockers},
            )
        await self.repo.delete(row)
        await self.session.flush()
        await self._record(f"{_KIND[type(row)]}.deleted", actor, org_id, row)

    def _stamps(self) -> dict[str, datetime]:
        now = self.clock.now()
        return {"created_at": now, "updated_at": now}

    # --- sites -----------------------------------------------------------------------------
    async def create_site(
        self, actor: str, org_id: str, *, kind: str, name: str, region_code: str, address: Address
    ) -> Site:
        """A new site with its region code and standard address (name unique in the org)."""
        site_kind = _kind(kind, SiteKind, "kind")
        site_name = check_name(name, "name")
        code = check_region_code(region_code)
        where = address.checked()
        if await self.repo.site_named(org_id, site_name) is not None:
            raise NameTaken("已有同名场所 / a site of that name exists", details={"field": "name"})
        site = Site(
            id=new_id(),
            org_id=org_id,
            kind=site_kind,
            name=site_name,
            region_code=code,
            province=where.province,
            city=where.city,
            district=where.district,
            town=where.town,
            road=where.road,
            community=where.community,
            **self._stamps(),
        )
        self.repo.add(site)
        await self.session.flush()
        await self._record("site.created", actor, org_id, site, kind=site_kind, region=code)
        return site

    async def sites(self, org_id: str, *, limit: int = 100, offset: int = 0) -> Sequence[Site]:
        return await self.repo.sites(org_id, limit=limit, offset=offset)

    async def site(self, org_id: str, site_id: str) -> Site:
        return await self._get(Site, org_id, site_id)

    async def rename_site(self, actor: str, org_id: str, site_id: str, name: str) -> Site:
        site = await self._get(Site, org_id, site_id, for_update=True)
        new_name = check_name(name, "name")
        if new_name != site.name and await self.repo.site_named(org_id, new_name) is not None:
            raise NameTaken("已有同名场所 / a site of that name exists", details={"field": "name"})
        site.name = new_name
        return await self._renamed(actor, org_id, site, "name")

    async def delete_site(self, actor: str, org_id: str, site_id: str) -> None:
        site = await self._get(Site, org_id, site_id, for_update=True)
        blockers = await self.repo.count_children(Building, site.id)
        await self._deleted(actor, org_id, site, blockers + await self.repo.count_groups(site.id))

    # --- buildings -------------------------------------------------------------------------
    async def create_building(self, actor: str, org_id: str, site_id: str, name: str) -> Building:
        site = await self._get(Site, org_id, site_id)
        building_name = check_name(name, "name")
        if await self.repo.building_named(site.id, building_name) is not None:
            raise NameTaken(
                "已有同名楼栋 / a building of that name exists", details={"field": "name"}
            )
        building = Building(
            id=new_id(), org_id=org_id, site_id=site.id, name=building_name, **self._stamps()
        )
        self.repo.add(building)
        await self.session.flush()
        await self._record("building.created", actor, org_id, building, site=site.id)
        return building

    async def buildings(
        self, org_id: str, site_id: str, *, limit: int = 100, offset: int = 0
    ) -> Sequence[Building]:
        site = await self._get(Site, org_id, site_id)
        return await self.repo.buildings(org_id, site.id, limit=limit, offset=offset)

    async def building(self, org_id: str, building_id: str) -> Building:
        return await self._get(Building, org_id, building_id)

    async def rename_building(
        self, actor: str, org_id: str, building_id: str, name: str
    ) -> Building:
        building = await self._get(Building, org_id, building_id, for_update=True)
        new_name = check_name(name, "name")
        if new_name != building.name and await self.repo.building_named(building.site_id, new_name):
            raise NameTaken(
                "已有同名楼栋 / a building of that name exists", details={"field": "name"}
            )
        building.name = new_name
        return await self._renamed(actor, org_id, building, "name")

    async def delete_building(self, actor: str, org_id: str, building_id: str) -> None:
        building = await self._get(Building, org_id, building_id, for_update=True)
        blockers = await self.repo.count_children(Unit, building.id)
        blockers += await self.repo.count_groups(building.id)
        await self._deleted(actor, org_id, building, blockers)

    # --- units -----------------------------------------------------------------------------
    async def create_unit(
        self, actor: str, org_id: str, building_id: str, name: str, floors: int | None = None
    ) -> Unit:
        building = await self._get(Building, org_id, building_id)
        unit_name = check_name(name, "name")
        check_range(floors, "floors", 1, MAX_FLOORS)
        if await self.repo.unit_named(building.id, unit_name) is not None:
            raise NameTaken("已有同名单元 / a unit of that name exists", details={"field": "name"})
        unit = Unit(
            id=new_id(),
            org_id=org_id,
            building_id=building.id,
            name=unit_name,
            floors=floors,
            **self._stamps(),
        )
        self.repo.add(unit)
        await self.session.flush()
        await self._record("unit.created", actor, org_id, unit, building=building.id)
        return unit

    async def units(
        self, org_id: str, building_id: str, *, limit: int = 100, offset: int = 0
    ) -> Sequence[Unit]:
        building = await self._get(Building, org_id, building_id)
        return await self.repo.units(org_id, building.id, limit=limit, offset=offset)

    async def unit(self, org_id: str, unit_id: str) -> Unit:
        return await self._get(Unit, org_id, unit_id)

    async def rename_unit(self, actor: str, org_id: str, unit_id: str, name: str) -> Unit:
        unit = await self._get(Unit, org_id, unit_id, for_update=True)
        new_name = check_name(name, "name")
        if new_name != unit.name and await self.repo.unit_named(unit.building_id, new_name):
            raise NameTaken("已有同名单元 / a unit of that name exists", details={"field": "name"})
        unit.name = new_name
        return await self._renamed(actor, org_id, unit, "name")

    async def delete_unit(self, actor: str, org_id: str, unit_id: str) -> None:
        unit = await self._get(Unit, org_id, unit_id, for_update=True)
        blockers = await self.repo.count_children(Room, unit.id)
        await self._deleted(actor, org_id, unit, blockers + await self.repo.count_groups(unit.id))

    # --- rooms -----------------------------------------------------------------------------
    async def create_room(
        self,
        actor: str,
        org_id: str,
        unit_id: str,
        *,
        number: str,
        floor: int,
        kind: str = RoomKind.STANDARD,
        capacity: int = 2,
    ) -> Room:
        """A new room; its number is unique in the unit; the floor fits the unit's floors."""
        unit = await self._get(Unit, org_id, unit_id)
        room_number = check_name(number, "number", limit=32)
        room_kind = _kind(kind, RoomKind, "kind")
        check_range(floor, "floor", MIN_FLOOR, unit.floors or MAX_FLOORS)
        check_range(capacity, "capacity", 1, MAX_CAPACITY)
        if await self.repo.room_numbered(unit.id, room_number) is not None:
            raise RoomNumberTaken(
                "该单元已有此房号 / the unit already has a room of that number",
                details={"field": "number"},
            )
        room = Room(
            id=new_id(),
            org_id=org_id,
            unit_id=unit.id,
            number=room_number,
            floor=floor,
            kind=room_kind,
            capacity=capacity,
            **self._stamps(),
        )
        self.repo.add(room)
        await self.session.flush()
        await self._record("room.created", actor, org_id, room, unit=unit.id)
        return room

    async def rooms(
        self, org_id: str, unit_id: str, *, limit: int = 100, offset: int = 0
    ) -> Sequence[Room]:
        unit = await self._get(Unit, org_id, unit_id)
        return await self.repo.rooms(org_id, unit.id, limit=limit, offset=offset)

    async def room(self, org_id: str, room_id: str, *, for_update: bool = False) -> Room:
        """The organisation's room (``room_not_found`` otherwise); locked if asked."""
        return await self._get(Room, org_id, room_id, for_update=for_update)

    async def rename_room(self, actor: str, org_id: str, room_id: str, number: str) -> Room:
        room = await self._get(Room, org_id, room_id, for_update=True)
        new_number = check_name(number, "number", limit=32)
        if new_number != room.number and await self.repo.room_numbered(room.unit_id, new_number):
            raise RoomNumberTaken(
                "该单元已有此房号 / the unit already has a room of that number",
                details={"field": "number"},
            )
        room.number = new_number
        return await self._renamed(actor, org_id, room, "number")

    async def delete_room(self, actor: str, org_id: str, room_id: str) -> None:
        room = await self._get(Room, org_id, room_id, for_update=True)
        await self._deleted(actor, org_id, room, len(await self.repo.locks_of_room(room.id)))

    # --- room locks ------------------------------------------------------------------------
    async def _free_lock(self, org_id: str, device_id: str) -> Device:
        """A lock of the organisation bound to no room and in no door group."""
        device = None
        if 0 < len(device_id) <= 32:
            device = await self.repo.org_lock(org_id, device_id)
        if device is None:
            # Another organisation's lock is as unknown as one that does not exist.
            raise LockNotFound("门锁不存在 / no such lock", details={"device_id": device_id[:64]})
        if await self.repo.room_lock(device.id) is not None or await self.repo.is_common_door(
            device.id
        ):
            raise LockAlreadyBound(
                "门锁已绑定 / the lock is already bound", details={"device_id": device.id}
            )
        return device

    async def bind_lock(self, actor: str, org_id: str, room_id: str, device_id: str) -> RoomLock:
        """Bind a lock of the organisation to a door of the room (≤ 4 per room)."""
        room = await self._get(Room, org_id, room_id, for_update=True)
        device = await self._free_lock(org_id, device_id)
        if len(await self.repo.locks_of_room(room.id)) >= MAX_LOCKS_PER_ROOM:
            raise RoomLockLimit(
                f"每个房间最多 {MAX_LOCKS_PER_ROOM} 把锁 / at most {MAX_LOCKS_PER_ROOM} locks "
                "per room",
                details={"max": MAX_LOCKS_PER_ROOM},
            )
        binding = RoomLock(
            device_id=device.id, room_id=room.id, org_id=org_id, bound_at=self.clock.now()
        )
        self.repo.add(binding)
        await self.session.flush()
        await self._record("room.lock_bound", actor, org_id, room, device=device.id)
        return binding

    async def unbind_lock(self, actor: str, org_id: str, room_id: str, device_id: str) -> None:
        room = await self._get(Room, org_id, room_id, for_update=True)
        binding = await self.repo.room_lock(device_id) if len(device_id) <= 32 else None
        if binding is None or binding.room_id != room.id:
            raise LockNotFound(
                "该房间没有这把锁 / the room has no such lock",
                details={"device_id": device_id[:64]},
            )
        await self.repo.delete(binding)
        await self.session.flush()
        await self._record("room.lock_unbound", actor, org_id, room, device=binding.device_id)

    async def locks_of_room(self, org_id: str, room_id: str) -> Sequence[RoomLock]:
        room = await self._get(Room, org_id, room_id)
        return await self.repo.locks_of_room(room.id)

    # --- door groups -----------------------------------------------------------------------
    async def _scope_row(self, org_id: str, scope: str, scope_id: str) -> Site | Building | Unit:
        try:
            where = Scope(scope)
        except ValueError:
            raise InvalidInput(
                f"未知范围 / unknown scope {scope[:32]!r}",
                details={"field": "scope", "known": [s.value for s in Scope]},
            ) from None
        if where is Scope.SITE:
            return await self._get(Site, org_id, scope_id)
        if where is Scope.BUILDING:
            return await self._get(Building, org_id, scope_id)
        return await self._get(Unit, org_id, scope_id)

    async def create_door_group(
        self, actor: str, org_id: str, scope: str, scope_id: str, name: str
    ) -> DoorGroup:
        """A named set of common doors of a site, building or unit (name unique there)."""
        owner = await self._scope_row(org_id, scope, scope_id)
        group_name = check_name(name, "name")
        if await self.repo.group_named(owner.id, group_name) is not None:
            raise NameTaken(
                "已有同名门组 / a door group of that name exists", details={"field": "name"}
            )
        group = DoorGroup(
            id=new_id(),
            org_id=org_id,
            scope=Scope(scope).value,
            scope_id=owner.id,
            name=group_name,
            **self._stamps(),
        )
        self.repo.add(group)
        await self.session.flush()
        await self._record("door_group.created", actor, org_id, group, scope=group.scope)
        return group

    async def door_groups(self, org_id: str, scope: str, scope_id: str) -> Sequence[DoorGroup]:
        owner = await self._scope_row(org_id, scope, scope_id)
        return await self.repo.groups_of(org_id, [owner.id])

    async def door_group(self, org_id: str, group_id: str) -> DoorGroup:
        return await self._get(DoorGroup, org_id, group_id)

    async def doors_of_group(self, org_id: str, group_id: str) -> tuple[str, ...]:
        group = await self._get(DoorGroup, org_id, group_id)
        return tuple(d.device_id for d in await self.repo.doors_of_groups([group.id]))

    async def rename_door_group(
        self, actor: str, org_id: str, group_id: str, name: str
    ) -> DoorGroup:
        group = await self._get(DoorGroup, org_id, group_id, for_update=True)
        new_name = check_name(name, "name")
        if new_name != group.name and await self.repo.group_named(group.scope_id, new_name):
            raise NameTaken(
                "已有同名门组 / a door group of that name exists", details={"field": "name"}
            )
        group.name = new_name
        return await self._renamed(actor, org_id, group, "name")

    async def delete_door_group(self, actor: str, org_id: str, group_id: str) -> None:
        group = await self._get(DoorGroup, org_id, group_id, for_update=True)
        await self._deleted(actor, org_id, group, len(await self.repo.doors_of_groups([group.id])))

    async def add_door(self, actor: str, org_id: str, group_id: str, device_id: str) -> None:
        """Put a lock of the organisation (bound to no room) in the group."""
        group = await self._get(DoorGroup, org_id, group_id, for_update=True)
        device = None
        if 0 < len(device_id) <= 32:
            device = await self.repo.org_lock(org_id, device_id)
        if device is None:
            raise LockNotFound("门锁不存在 / no such lock", details={"device_id": device_id[:64]})
        if await self.repo.room_lock(device.id) is not None:
            raise LockAlreadyBound(
                "门锁已绑定到房间 / the lock is bound to a room", details={"device_id": device.id}
            )
        if await self.repo.group_door(group.id, device.id) is not None:
            return  # already there: adding twice is harmless
        if len(await self.repo.doors_of_groups([group.id])) >= MAX_DOORS_PER_GROUP:
            raise InvalidInput(
                f"每个门组最多 {MAX_DOORS_PER_GROUP} 个门 / at most {MAX_DOORS_PER_GROUP} doors",
                details={"field": "device_id", "max": MAX_DOORS_PER_GROUP},
            )
        self.repo.add(
            DoorGroupDoor(
                group_id=group.id, device_id=device.id, org_id=org_id, added_at=self.clock.now()
            )
        )
        await self.session.flush()
        await self._record("door_group.door_added", actor, org_id, group, device=device.id)

    async def remove_door(self, actor: str, org_id: str, group_id: str, device_id: str) -> None:
        group = await self._get(DoorGroup, org_id, group_id, for_update=True)
        door = await self.repo.group_door(group.id, device_id) if len(device_id) <= 32 else None
        if door is None:
            raise LockNotFound(
                "门组没有这扇门 / the group has no such door", details={"device_id": device_id[:64]}
            )
        await self.repo.delete(door)
        await self.session.flush()
        await self._record("door_group.door_removed", actor, org_id, group, device=device_id)

    # --- what other domains ask ------------------------------------------------------------
    async def _chain(self, org_id: str, room_id: str) -> tuple[Room, Unit, Building, Site]:
        room = await self.room(org_id, room_id)
        unit = await self._get(Unit, org_id, room.unit_id)
        building = await self._get(Building, org_id, unit.building_id)
        site = await self._get(Site, org_id, building.site_id)
        return room, unit, building, site

    async def doors_of_room(self, org_id: str, room_id: str) -> RoomDoors:
        """The room's own locks and its common doors (groups of its unit, building and site);
        only devices that can still take commands."""
        room, unit, building, site = await self._chain(org_id, room_id)
        locks = [b.device_id for b in await self.repo.locks_of_room(room.id)]
        groups = await self.repo.groups_of(org_id, [site.id, building.id, unit.id])
        common: list[str] = []
        for door in await self.repo.doors_of_groups([g.id for g in groups]):
            if door.device_id not in common and door.device_id not in locks:
                common.append(door.device_id)
        usable = await self.repo.usable_devices(org_id, locks + common)
        return RoomDoors(
            tuple(d for d in locks if d in usable), tuple(d for d in common if d in usable)
        )

    async def standard_address(self, org_id: str, room_id: str) -> str:
        """省市区、街道、路号、社区、楼栋、单元、户室 in one line (the city is left out when it
        repeats the province, as for municipalities)."""
        room, unit, building, site = await self._chain(org_id, room_id)
        city = "" if site.city == site.province else site.city
        parts = (site.province, city, site.district, site.town, site.road, site.community)
        return "".join((*parts, building.name, unit.name, _room_suffix(room.number)))

    async def orgs_in_regions(self, prefixes: Sequence[str]) -> set[str]:
        """Ids of organisations with a site whose region code starts with any prefix."""
        checked = [check_region_prefix(p) for p in prefixes]
        return await self.repo.orgs_in_regions(checked)
