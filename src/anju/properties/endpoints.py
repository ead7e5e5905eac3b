"""HTTP endpoints under /api/v1/properties: sites, buildings, units, rooms, room locks and door
groups (docs/properties.md).

Reading needs ``properties.read`` (or ``properties.manage``); every change needs
``properties.manage`` and a recent second factor (binding a lock decides who opens which door).
Refusals are audited; another organisation's ids are 404, like ids that do not exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.deps import BearerToken
from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.api.deps import PlatformDep
from anju.platform import Platform
from anju.properties.guard import as_manager, as_reader
from anju.properties.schemas import (
    BuildingOut,
    DoorGroupIn,
    DoorGroupOut,
    NameIn,
    RenumberIn,
    RoomDetailOut,
    RoomIn,
    RoomOut,
    SiteIn,
    SiteOut,
    UnitIn,
    UnitOut,
    building_out,
    door_group_out,
    room_detail_out,
    room_out,
    site_out,
    unit_out,
)
from anju.properties.service import PropertyService

router = APIRouter(prefix="/api/v1/properties", tags=["properties"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Work = Callable[[PropertyService, str, Principal], Awaitable[Any]]


async def _read(platform: Platform, token: str, work: Work) -> Any:
    """``work`` as a reader (``properties.read`` or ``properties.manage``) of the caller's org."""

    async def go(session: AsyncSession, org_id: str, principal: Principal) -> Any:
        return await work(PropertyService(platform, session), org_id, principal)

    return await as_reader(
        platform, token, Cap.PROPERTIES_READ, Cap.PROPERTIES_MANAGE, "properties.read", go
    )


async def _change(platform: Platform, token: str, action: str, work: Work) -> Any:
    """``work`` as a manager with a recent second factor; a refusal is audited as ``action``."""

    async def go(session: AsyncSession, org_id: str, principal: Principal) -> Any:
        return await work(PropertyService(platform, session), org_id, principal)

    return await as_manager(platform, token, Cap.PROPERTIES_MANAGE, f"properties.{action}", go)


# --- creating and listing, level by level ------------------------------------------------
@router.post("/sites", response_model=SiteOut, status_code=status.HTTP_201_CREATED)
async def create_site(body: SiteIn, token: BearerToken, platform: PlatformDep) -> SiteOut:
    """A new site (hotel, homestay, apartment, public rental, estate) with its address."""

    async def work(svc: PropertyService, org_id: str, p: Principal) -> SiteOut:
        site = await svc.create_site(
            p.actor,
            org_id,
            kind=body.kind,
            name=body.name,
            region_code=body.region_code,
            address=body.address.address(),
        )
        return site_out(site)

    result: SiteOut = await _change(platform, token, "site.created", work)
    return result


@router.get("/sites", response_model=list[SiteOut])
async def list_sites(
    token: BearerToken, platform: PlatformDep, limit: Limit = 100, offset: Offset = 0
) -> list[SiteOut]:
    async def work(svc: PropertyService, org_id: str, _: Principal) -> list[SiteOut]:
        return [site_out(s) for s in await svc.sites(org_id, limit=limit, offset=offset)]

    result: list[SiteOut] = await _read(platform, token, work)
    return result


@router.post(
    "/sites/{site_id}/buildings", response_model=BuildingOut, status_code=status.HTTP_201_CREATED
)
async def create_building(
    site_id: IdPath, body: NameIn, token: BearerToken, platform: PlatformDep
) -> BuildingOut:
    async def work(svc: PropertyService, org_id: str, p: Principal) -> BuildingOut:
        return building_out(await svc.create_building(p.actor, org_id, site_id, body.name))

    result: BuildingOut = await _change(platform, token, "building.created", work)
    return result


@router.get("/sites/{site_id}/buildings", response_model=list[BuildingOut])
async def list_buildings(
    site_id: IdPath,
    token: BearerToken,
    platform: PlatformDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[BuildingOut]:
    async def work(svc: PropertyService, org_id: str, _: Principal) -> list[BuildingOut]:
        rows = await svc.buildings(org_id, site_id, limit=limit, offset=offset)
        return [building_out(b) for b in rows]

    result: list[BuildingOut] = await _read(platform, token, work)
    return result


@router.post(
    "/buildings/{building_id}/units", response_model=UnitOut, status_code=status.HTTP_201_CREATED
)
async def create_unit(
    building_id: IdPath, body: UnitIn, token: BearerToken, platform: PlatformDep
) -> UnitOut:
    async def work(svc: PropertyService, org_id: str, p: Principal) -> UnitOut:
        unit = await svc.create_unit(p.actor, org_id, building_id, body.name, body.floors)
        return unit_out(unit)

    result: UnitOut = await _change(platform, token, "unit.created", work)
    return result


@router.get("/buildings/{building_id}/units", response_model=list[UnitOut])
async def list_units(
    building_id: IdPath,
    token: BearerToken,
    platform: PlatformDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[UnitOut]:
    async def work(svc: PropertyService, org_id: str, _: Principal) -> list[UnitOut]:
        return [
            unit_out(u) for u in await svc.units(org_id, building_id, limit=limit, offset=offset)
        ]

    result: list[UnitOut] = await _read(platform, token, work)
    return result


@router.post("/units/{unit_id}/rooms", response_model=RoomOut, status_code=status.HTTP_201_CREATED)
async def create_room(
    unit_id: IdPath, body: RoomIn, token: BearerToken, platform: PlatformDep
) -> RoomOut:
    async def work(svc: PropertyService, org_id: str, p: Principal) -> RoomOut:
        room = await svc.create_room(
            p.actor,
            org_id,
            unit_id,
            number=body.number,
            floor=body.floor,
            kind=body.kind,
            capacity=body.capacity,
        )
        return room_out(room)

    result: RoomOut = await _change(platform, token, "room.created", work)
    return result


@router.get("/units/{unit_id}/rooms", response_model=list[RoomOut])
async def list_rooms(
    unit_id: IdPath,
    token: BearerToken,
    platform: PlatformDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[RoomOut]:
    async def work(svc: PropertyService, org_id: str, _: Principal) -> list[RoomOut]:
        return [room_out(r) for r in await svc.rooms(org_id, unit_id, limit=limit, offset=offset)]

    result: list[RoomOut] = await _read(platform, token, work)
    return result


@router.get("/rooms/{room_id}", response_model=RoomDetailOut)
async def get_room(room_id: IdPath, token: BearerToken, platform: PlatformDep) -> RoomDetailOut:
    """A room with its standard address, its locks and its common doors."""

    async def work(svc: PropertyService, org_id: str, _: Principal) -> RoomDetailOut:
        room = await svc.room(org_id, room_id)
        address = await svc.standard_address(org_id, room_id)
        return room_detail_out(room, address, await svc.doors_of_room(org_id, room_id))

    result: RoomDetailOut = await _read(platform, token, work)
    return result


@router.patch("/rooms/{room_id}", response_model=RoomOut)
async def renumber_room(
    room_id: IdPath, body: RenumberIn, token: BearerToken, platform: PlatformDep
) -> RoomOut:
    async def work(svc: PropertyService, org_id: str, p: Principal) -> RoomOut:
        return room_out(await svc.rename_room(p.actor, org_id, room_id, body.number))

    result: RoomOut = await _change(platform, token, "room.renamed", work)
    return result


@router.delete("/rooms/{room_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_room(room_id: IdPath, token: BearerToken, platform: PlatformDep) -> Response:
    """Delete a room (refused while a lock is bound to it)."""

    async def work(svc: PropertyService, org_id: str, p: Principal) -> None:
        await svc.delete_room(p.actor, org_id, room_id)

    await _change(platform, token, "room.deleted", work)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- get / rename / delete of sites, buildings, units and door groups --------------------
def _level_routes(
    path: str,
    kind: str,
    response_model: type[BaseModel],
    get: Callable[[PropertyService, str, str], Awaitable[BaseModel]],
    rename: Callable[[PropertyService, str, str, str, str], Awaitable[BaseModel]],
    delete: Callable[[PropertyService, str, str, str], Awaitable[None]],
) -> None:
    async def get_one(row_id: IdPath, token: BearerToken, platform: PlatformDep) -> Any:
        return await _read(platform, token, lambda svc, org, _: get(svc, org, row_id))

    async def rename_one(
        row_id: IdPath, body: NameIn, token: BearerToken, platform: PlatformDep
    ) -> Any:
        def work(svc: PropertyService, org: str, p: Principal) -> Awaitable[BaseModel]:
            return rename(svc, p.actor, org, row_id, body.name)

        return await _change(platform, token, f"{kind}.renamed", work)

    async def delete_one(row_id: IdPath, token: BearerToken, platform: PlatformDep) -> Response:
        def work(svc: PropertyService, org: str, p: Principal) -> Awaitable[None]:
            return delete(svc, p.actor, org, row_id)

        await _change(platform, token, f"{kind}.deleted", work)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    route = f"/{path}/{{row_id}}"
    router.add_api_route(
        route, get_one, methods=["GET"], response_model=response_model, name=f"get_{kind}"
    )
    router.add_api_route(
        route, rename_one, methods=["PATCH"], response_model=response_model, name=f"rename_{kind}"
    )
    router.add_api_route(
        route,
        delete_one,
        methods=["DELETE"],
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        name=f"delete_{kind}",
    )


async def _site(svc: PropertyService, org: str, row_id: str) -> BaseModel:
    return site_out(await svc.site(org, row_id))


async def _rename_site(
    svc: PropertyService, actor: str, org: str, row_id: str, name: str
) -> BaseModel:
    return site_out(await svc.rename_site(actor, org, row_id, name))


async def _building(svc: PropertyService, org: str, row_id: str) -> BaseModel:
    return building_out(await svc.building(org, row_id))


async def _rename_building(
    svc: PropertyService, actor: str, org: str, row_id: str, name: str
) -> BaseModel:
    return building_out(await svc.rename_building(actor, org, row_id, name))


async def _unit(svc: PropertyService, org: str, row_id: str) -> BaseModel:
    return unit_out(await svc.unit(org, row_id))


async def _rename_unit(
    svc: PropertyService, actor: str, org: str, row_id: str, name: str
) -> BaseModel:
    return unit_out(await svc.rename_unit(actor, org, row_id, name))


async def _group(svc: PropertyService, org: str, row_id: str) -> BaseModel:
    group = await svc.door_group(org, row_id)
    return door_group_out(group, await svc.doors_of_group(org, row_id))


async def _rename_group(
    svc: PropertyService, actor: str, org: str, row_id: str, name: str
) -> BaseModel:
    group = await svc.rename_door_group(actor, org, row_id, name)
    return door_group_out(group, await svc.doors_of_group(org, row_id))


# --- room locks and door groups ----------------------------------------------------------
@router.put("/rooms/{room_id}/locks/{device_id}", response_model=RoomDetailOut)
async def bind_lock(
    room_id: IdPath, device_id: IdPath, token: BearerToken, platform: PlatformDep
) -> RoomDetailOut:
    """Bind a lock of the organisation to the room (≤ 4 per room; a lock serves one room)."""

    async def work(svc: PropertyService, org_id: str, p: Principal) -> RoomDetailOut:
        await svc.bind_lock(p.actor, org_id, room_id, device_id)
        room = await svc.room(org_id, room_id)
        address = await svc.standard_address(org_id, room_id)
        return room_detail_out(room, address, await svc.doors_of_room(org_id, room_id))

    result: RoomDetailOut = await _change(platform, token, "room.lock_bound", work)
    return result


@router.delete("/rooms/{room_id}/locks/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
async def unbind_lock(
    room_id: IdPath, device_id: IdPath, token: BearerToken, platform: PlatformDep
) -> Response:
    async def work(svc: PropertyService, org_id: str, p: Principal) -> None:
        await svc.unbind_lock(p.actor, org_id, room_id, device_id)

    await _change(platform, token, "room.lock_unbound", work)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/door-groups", response_model=DoorGroupOut, status_code=status.HTTP_201_CREATED)
async def create_door_group(
    body: DoorGroupIn, token: BearerToken, platform: PlatformDep
) -> DoorGroupOut:
    """A named set of common doors of a site, building or unit."""

    async def work(svc: PropertyService, org_id: str, p: Principal) -> DoorGroupOut:
        group = await svc.create_door_group(p.actor, org_id, body.scope, body.scope_id, body.name)
        return door_group_out(group, ())

    result: DoorGroupOut = await _change(platform, token, "door_group.created", work)
    return result


@router.get("/door-groups", response_model=list[DoorGroupOut])
async def list_door_groups(
    token: BearerToken,
    platform: PlatformDep,
    scope: Annotated[str, Query(max_length=16)],
    scope_id: Annotated[str, Query(min_length=1, max_length=36)],
) -> list[DoorGroupOut]:
    async def work(svc: PropertyService, org_id: str, _: Principal) -> list[DoorGroupOut]:
        groups = await svc.door_groups(org_id, scope, scope_id)
        return [door_group_out(g, await svc.doors_of_group(org_id, g.id)) for g in groups]

    result: list[DoorGroupOut] = await _read(platform, token, work)
    return result


@router.put("/door-groups/{group_id}/doors/{device_id}", response_model=DoorGroupOut)
async def add_door(
    group_id: IdPath, device_id: IdPath, token: BearerToken, platform: PlatformDep
) -> DoorGroupOut:
    async def work(svc: PropertyService, org_id: str, p: Principal) -> DoorGroupOut:
        await svc.add_door(p.actor, org_id, group_id, device_id)
        group = await svc.door_group(org_id, group_id)
        return door_group_out(group, await svc.doors_of_group(org_id, group_id))

    result: DoorGroupOut = await _change(platform, token, "door_group.door_added", work)
    return result


@router.delete("/door-groups/{group_id}/doors/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_door(
    group_id: IdPath, device_id: IdPath, token: BearerToken, platform: PlatformDep
) -> Response:
    async def work(svc: PropertyService, org_id: str, p: Principal) -> None:
        await svc.remove_door(p.actor, org_id, group_id, device_id)

    await _change(platform, token, "door_group.door_removed", work)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


_level_routes(
    "sites", "site", SiteOut, _site, _rename_site, lambda s, a, o, i: s.delete_site(a, o, i)
)
_level_routes(
    "buildings",
    "building",
    BuildingOut,
    _building,
    _rename_building,
    lambda s, a, o, i: s.delete_building(a, o, i),
)
_level_routes(
    "units", "unit", UnitOut, _unit, _rename_unit, lambda s, a, o, i: s.delete_unit(a, o, i)
)
_level_routes(
    "door-groups",
    "door_group",
    DoorGroupOut,
    _group,
    _rename_group,
    lambda s, a, o, i: s.delete_door_group(a, o, i),
)
