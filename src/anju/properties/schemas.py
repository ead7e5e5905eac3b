"""HTTP and CLI shapes of properties (pydantic); lengths bounded here, rules in the service."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from anju.properties.models import Building, DoorGroup, Room, Site, Unit
from anju.properties.rules import MAX_NAME
from anju.properties.service import Address, RoomDoors

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Part = Annotated[str, Field(max_length=MAX_NAME)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddressIn(Strict):
    province: Name
    city: Part = ""
    district: Part = ""
    town: Part = ""
    road: Part = ""
    community: Part = ""

    def address(self) -> Address:
        return Address(
            self.province, self.city, self.district, self.town, self.road, self.community
        )


class SiteIn(Strict):
    kind: Annotated[str, Field(max_length=32)]
    name: Name
    region_code: Annotated[str, Field(max_length=16)]
    address: AddressIn


class NameIn(Strict):
    name: Name


class UnitIn(Strict):
    name: Name
    floors: int | None = None


class RoomIn(Strict):
    number: Annotated[str, Field(min_length=1, max_length=32)]
    floor: int
    kind: Annotated[str, Field(max_length=32)] = "standard"
    capacity: int = 2


class RenumberIn(Strict):
    number: Annotated[str, Field(min_length=1, max_length=32)]


class DoorGroupIn(Strict):
    scope: Annotated[str, Field(max_length=16)]
    scope_id: Annotated[str, Field(min_length=1, max_length=36)]
    name: Name


class AddressOut(BaseModel):
    province: str
    city: str
    district: str
    town: str
    road: str
    community: str


class SiteOut(BaseModel):
    id: str
    kind: str
    name: str
    region_code: str
    address: AddressOut
    created_at: str


class BuildingOut(BaseModel):
    id: str
    site_id: str
    name: str
    created_at: str


class UnitOut(BaseModel):
    id: str
    building_id: str
    name: str
    floors: int | None
    created_at: str


class RoomOut(BaseModel):
    id: str
    unit_id: str
    number: str
    floor: int
    kind: str
    capacity: int
    created_at: str


class RoomDetailOut(RoomOut):
    standard_address: str
    room_locks: list[str]
    common_doors: list[str]


class DoorGroupOut(BaseModel):
    id: str
    scope: str
    scope_id: str
    name: str
    doors: list[str]
    created_at: str


def site_out(site: Site) -> SiteOut:
    return SiteOut(
        id=site.id,
        kind=site.kind,
        name=site.name,
        region_code=site.region_code,
        address=AddressOut(
            province=site.province,
            city=site.city,
            district=site.district,
            town=site.town,
            road=site.road,
            community=site.community,
        ),
        created_at=site.created_at.isoformat(),
    )


def building_out(building: Building) -> BuildingOut:
    return BuildingOut(
        id=building.id,
        site_id=building.site_id,
        name=building.name,
        created_at=building.created_at.isoformat(),
    )


def unit_out(unit: Unit) -> UnitOut:
    return UnitOut(
        id=unit.id,
        building_id=unit.building_id,
        name=unit.name,
        floors=unit.floors,
        created_at=unit.created_at.isoformat(),
    )


def room_out(room: Room) -> RoomOut:
    return RoomOut(
        id=room.id,
        unit_id=room.unit_id,
        number=room.number,
        floor=room.floor,
        kind=room.kind,
        capacity=room.capacity,
        created_at=room.created_at.isoformat(),
    )


def room_detail_out(room: Room, address: str, doors: RoomDoors) -> RoomDetailOut:
    return RoomDetailOut(
        **room_out(room).model_dump(),
        standard_address=address,
        room_locks=list(doors.room_locks),
        common_doors=list(doors.common_doors),
    )


def door_group_out(group: DoorGroup, doors: tuple[str, ...]) -> DoorGroupOut:
    return DoorGroupOut(
        id=group.id,
        scope=group.scope,
        scope_id=group.scope_id,
        name=group.name,
        doors=list(doors),
        created_at=group.created_at.isoformat(),
    )
