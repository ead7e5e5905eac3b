"""Queries of the property tables (every one filtered by organisation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.devices.commands.rules import COMMANDABLE
from anju.devices.models import Device
from anju.properties.models import (
    Building,
    DoorGroup,
    DoorGroupDoor,
    Room,
    RoomLock,
    Site,
    Unit,
)

Row = TypeVar("Row", Site, Building, Unit, Room, DoorGroup)


class PropertiesRepository:
    """Reads and writes of sites, buildings, units, rooms, locks and door groups."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: object) -> None:
        self.session.add(row)

    async def delete(self, row: object) -> None:
        await self.session.delete(row)

    async def one(
        self, model: type[Row], org_id: str, row_id: str, *, for_update: bool = False
    ) -> Row | None:
        """A row of ``model`` of the organisation (another organisation's is ``None``)."""
        query = select(model).where(model.id == row_id, model.org_id == org_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def sites(self, org_id: str, *, limit: int, offset: int) -> Sequence[Site]:
        query = select(Site).where(Site.org_id == org_id).order_by(Site.name, Site.id)
        return (await self.session.execute(query.limit(limit).offset(offset))).scalars().all()

    async def buildings(
        self, org_id: str, site_id: str, *, limit: int, offset: int
    ) -> Sequence[Building]:
        query = (
            select(Building)
            .where(Building.org_id == org_id, Building.site_id == site_id)
            .order_by(Building.name, Building.id)
        )
        return (await self.session.execute(query.limit(limit).offset(offset))).scalars().all()

    async def units(
        self, org_id: str, building_id: str, *, limit: int, offset: int
    ) -> Sequence[Unit]:
        query = (
            select(Unit)
            .where(Unit.org_id == org_id, Unit.building_id == building_id)
            .order_by(Unit.name, Unit.id)
        )
        return (await self.session.execute(query.limit(limit).offset(offset))).scalars().all()

    async def rooms(self, org_id: str, unit_id: str, *, limit: int, offset: int) -> Sequence[Room]:
        query = (
            select(Room)
            .where(Room.org_id == org_id, Room.unit_id == unit_id)
            .order_by(Room.floor, Room.number, Room.id)
        )
        return (await self.session.execute(query.limit(limit).offset(offset))).scalars().all()

    async def site_named(self, org_id: str, name: str) -> Site | None:
        query = select(Site).where(Site.org_id == org_id, Site.name == name)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def building_named(self, site_id: str, name: str) -> Building | None:
        query = select(Building).where(Building.site_id == site_id, Building.name == name)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def unit_named(self, building_id: str, name: str) -> Unit | None:
        query = select(Unit).where(Unit.building_id == building_id, Unit.name == name)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def room_numbered(self, unit_id: str, number: str) -> Room | None:
        query = select(Room).where(Room.unit_id == unit_id, Room.number == number)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def group_named(self, scope_id: str, name: str) -> DoorGroup | None:
        query = select(DoorGroup).where(DoorGroup.scope_id == scope_id, DoorGroup.name == name)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def count_children(self, model: type[Building | Unit | Room], parent_id: str) -> int:
        column = {
            Building: Building.site_id,
            Unit: Unit.building_id,
            Room: Room.unit_id,
        }[model]
        query = select(func.count()).select_from(model).where(column == parent_id)
        return int((await self.session.execute(query)).scalar_one())

    async def count_groups(self, scope_id: str) -> int:
        query = select(func.count()).select_from(DoorGroup).where(DoorGroup.scope_id == scope_id)
        return int((await self.session.execute(query)).scalar_one())

    # --- locks and door groups -------------------------------------------------------------
    async def org_lock(self, org_id: str, device_id: str) -> Device | None:
        """A lock registered to the organisation (another organisation's is ``None``)."""
        query = select(Device).where(
            Device.id == device_id, Device.org_id == org_id, Device.device_type == "lock"
        )
        return (await self.session.execute(query.with_for_update())).scalar_one_or_none()

    async def room_lock(self, device_id: str) -> RoomLock | None:
        query = select(RoomLock).where(RoomLock.device_id == device_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def locks_of_room(self, room_id: str) -> Sequence[RoomLock]:
        query = (
            select(RoomLock)
            .where(RoomLock.room_id == room_id)
            .order_by(RoomLock.bound_at, RoomLock.device_id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def is_common_door(self, device_id: str) -> bool:
        query = select(DoorGroupDoor.group_id).where(DoorGroupDoor.device_id == device_id)
        return (await self.session.execute(query.limit(1))).first() is not None

    async def groups_of(self, org_id: str, scope_ids: Sequence[str]) -> Sequence[DoorGroup]:
        query = (
            select(DoorGroup)
            .where(DoorGroup.org_id == org_id, DoorGroup.scope_id.in_(scope_ids))
            .order_by(DoorGroup.name, DoorGroup.id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def doors_of_groups(self, group_ids: Sequence[str]) -> Sequence[DoorGroupDoor]:
        if not group_ids:
            return []
        query = (
            select(DoorGroupDoor)
            .where(DoorGroupDoor.group_id.in_(group_ids))
            .order_by(DoorGroupDoor.added_at, DoorGroupDoor.device_id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def group_door(self, group_id: str, device_id: str) -> DoorGroupDoor | None:
        query = select(DoorGroupDoor).where(
            DoorGroupDoor.group_id == group_id, DoorGroupDoor.device_id == device_id
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def orgs_in_regions(self, prefixes: Sequence[str]) -> set[str]:
        if not prefixes:
            return set()
        query = select(Site.org_id).where(
            or_(*(Site.region_code.startswith(p, autoescape=True) for p in prefixes))
        )
        return {str(org) for org in (await self.session.execute(query.distinct())).scalars()}

    async def usable_devices(self, org_id: str, device_ids: Sequence[str]) -> set[str]:
        """Those of ``device_ids`` that are the organisation's and can still take commands."""
        if not device_ids:
            return set()
        query = select(Device.id).where(
            Device.id.in_(device_ids), Device.org_id == org_id, Device.status.in_(COMMANDABLE)
        )
        return set((await self.session.execute(query)).scalars())
