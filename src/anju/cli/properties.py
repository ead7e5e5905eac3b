"""``anju properties …``: sites, buildings, units, rooms, room locks and door groups
(docs/properties.md, "CLI").

Acts as actor "cli" inside the organisation ``--org`` names; output is JSON. Errors print
``anju: message [code]`` and exit 1, with nothing written.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from anju.cli.common import DataDirOption, run, settings_for
from anju.platform import open_platform
from anju.properties.schemas import (
    building_out,
    door_group_out,
    room_detail_out,
    room_out,
    site_out,
    unit_out,
)
from anju.properties.service import Address, PropertyService

ACTOR = "cli"
Work = Callable[[PropertyService], Awaitable[BaseModel | list[BaseModel] | None]]

app = typer.Typer(
    help="房产：场所、楼栋、单元、房间、门锁绑定、公共门组 / Properties: sites, buildings, units, "
    "rooms, room locks, common door groups.",
    no_args_is_help=True,
)
site_app = typer.Typer(help="场所 / Sites.", no_args_is_help=True)
building_app = typer.Typer(help="楼栋 / Buildings.", no_args_is_help=True)
unit_app = typer.Typer(help="单元 / Units.", no_args_is_help=True)
room_app = typer.Typer(help="房间与门锁 / Rooms and their locks.", no_args_is_help=True)
group_app = typer.Typer(help="公共门组 / Common door groups.", no_args_is_help=True)
app.add_typer(site_app, name="site")
app.add_typer(building_app, name="building")
app.add_typer(unit_app, name="unit")
app.add_typer(room_app, name="room")
app.add_typer(group_app, name="door-group")

OrgOption = Annotated[str, typer.Option("--org", help="Organisation id.")]
IdArg = Annotated[str, typer.Argument(help="Id.")]
NameOption = Annotated[str, typer.Option("--name", help="Name.")]
DeviceArg = Annotated[str, typer.Argument(help="Lock device id.")]
Part = Annotated[str, typer.Option(help="Address part (may be empty).")]


def _do(data_dir: Any, work: Work) -> None:
    """Run ``work`` in one transaction and print its answer as JSON."""

    async def go() -> Any:
        settings = settings_for(data_dir)
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            answer = await work(PropertyService(platform, session))
        if answer is None:
            return {"ok": True}
        if isinstance(answer, list):
            return [a.model_dump(mode="json") for a in answer]
        return answer.model_dump(mode="json")

    typer.echo(json.dumps(run(go()), indent=2, ensure_ascii=False, sort_keys=True))


# --- sites -------------------------------------------------------------------------------
@site_app.command("create")
def site_create(
    org: OrgOption,
    name: NameOption,
    kind: Annotated[
        str, typer.Option("--kind", help="hotel | homestay | apartment | public_rental | estate.")
    ],
    region_code: Annotated[
        str, typer.Option("--region-code", help="GB/T 2260 county code, e.g. 110105.")
    ],
    province: Annotated[str, typer.Option("--province", help="省.")],
    city: Part = "",
    district: Part = "",
    town: Part = "",
    road: Part = "",
    community: Part = "",
    data_dir: DataDirOption = None,
) -> None:
    """Create a site with its region code and standard address."""
    address = Address(province, city, district, town, road, community)

    async def work(svc: PropertyService) -> BaseModel:
        site = await svc.create_site(
            ACTOR, org, kind=kind, name=name, region_code=region_code, address=address
        )
        return site_out(site)

    _do(data_dir, work)


@site_app.command("list")
def site_list(org: OrgOption, data_dir: DataDirOption = None) -> None:
    """List the organisation's sites."""

    async def work(svc: PropertyService) -> list[BaseModel]:
        return [site_out(s) for s in await svc.sites(org, limit=500)]

    _do(data_dir, work)


@site_app.command("rename")
def site_rename(
    site: IdArg, org: OrgOption, name: NameOption, data_dir: DataDirOption = None
) -> None:
    async def work(svc: PropertyService) -> BaseModel:
        return site_out(await svc.rename_site(ACTOR, org, site, name))

    _do(data_dir, work)


@site_app.command("delete")
def site_delete(site: IdArg, org: OrgOption, data_dir: DataDirOption = None) -> None:
    """Delete an empty site (no buildings, no door groups)."""
    _do(data_dir, lambda svc: svc.delete_site(ACTOR, org, site))


# --- buildings and units -----------------------------------------------------------------
@building_app.command("create")
def building_create(
    org: OrgOption,
    site: Annotated[str, typer.Option("--site", help="Site id.")],
    name: NameOption,
    data_dir: DataDirOption = None,
) -> None:
    async def work(svc: PropertyService) -> BaseModel:
        return building_out(await svc.create_building(ACTOR, org, site, name))

    _do(data_dir, work)


@building_app.command("list")
def building_list(
    org: OrgOption,
    site: Annotated[str, typer.Option("--site", help="Site id.")],
    data_dir: DataDirOption = None,
) -> None:
    async def work(svc: PropertyService) -> list[BaseModel]:
        return [building_out(b) for b in await svc.buildings(org, site, limit=500)]

    _do(data_dir, work)


@building_app.command("delete")
def building_delete(building: IdArg, org: OrgOption, data_dir: DataDirOption = None) -> None:
    _do(data_dir, lambda svc: svc.delete_building(ACTOR, org, building))


@unit_app.command("create")
def unit_create(
    org: OrgOption,
    building: Annotated[str, typer.Option("--building", help="Building id.")],
    name: NameOption,
    floors: Annotated[int | None, typer.Option("--floors", help="Floor count.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    async def work(svc: PropertyService) -> BaseModel:
        return unit_out(await svc.create_unit(ACTOR, org, building, name, floors))

    _do(data_dir, work)


@unit_app.command("list")
def unit_list(
    org: OrgOption,
    building: Annotated[str, typer.Option("--building", help="Building id.")],
    data_dir: DataDirOption = None,
) -> None:
    async def work(svc: PropertyService) -> list[BaseModel]:
        return [unit_out(u) for u in await svc.units(org, building, limit=500)]

    _do(data_dir, work)


@unit_app.command("delete")
def unit_delete(unit: IdArg, org: OrgOption, data_dir: DataDirOption = None) -> None:
    _do(data_dir, lambda svc: svc.delete_unit(ACTOR, org, unit))


# --- rooms and their locks ---------------------------------------------------------------
@room_app.command("create")
def room_create(
    org: OrgOption,
    unit: Annotated[str, typer.Option("--unit", help="Unit id.")],
    number: Annotated[str, typer.Option("--number", help="Room number, unique in the unit.")],
    floor: Annotated[int, typer.Option("--floor", help="Floor (negative below ground).")],
    kind: Annotated[
        str, typer.Option("--kind", help="standard | suite | dormitory | …")
    ] = "standard",
    capacity: Annotated[int, typer.Option("--capacity", help="Beds / occupants.")] = 2,
    data_dir: DataDirOption = None,
) -> None:
    async def work(svc: PropertyService) -> BaseModel:
        room = await svc.create_room(
            ACTOR, org, unit, number=number, floor=floor, kind=kind, capacity=capacity
        )
        return room_out(room)

    _do(data_dir, work)


@room_app.command("list")
def room_list(
    org: OrgOption,
    unit: Annotated[str, typer.Option("--unit", help="Unit id.")],
    data_dir: DataDirOption = None,
) -> None:
    async def work(svc: PropertyService) -> list[BaseModel]:
        return [room_out(r) for r in await svc.rooms(org, unit, limit=500)]

    _do(data_dir, work)


async def _detail(svc: PropertyService, org: str, room: str) -> BaseModel:
    row = await svc.room(org, room)
    address = await svc.standard_address(org, room)
    return room_detail_out(row, address, await svc.doors_of_room(org, room))


@room_app.command("get")
def room_get(room: IdArg, org: OrgOption, data_dir: DataDirOption = None) -> None:
    """A room with its standard address, its locks and its common doors."""
    _do(data_dir, lambda svc: _detail(svc, org, room))


@room_app.command("delete")
def room_delete(room: IdArg, org: OrgOption, data_dir: DataDirOption = None) -> None:
    """Delete a room with no lock bound."""
    _do(data_dir, lambda svc: svc.delete_room(ACTOR, org, room))


@room_app.command("bind")
def room_bind(
    room: IdArg, device: DeviceArg, org: OrgOption, data_dir: DataDirOption = None
) -> None:
    """Bind a lock of the organisation to the room (≤ 4 per room)."""

    async def work(svc: PropertyService) -> BaseModel:
        await svc.bind_lock(ACTOR, org, room, device)
        return await _detail(svc, org, room)

    _do(data_dir, work)


@room_app.command("unbind")
def room_unbind(
    room: IdArg, device: DeviceArg, org: OrgOption, data_dir: DataDirOption = None
) -> None:
    _do(data_dir, lambda svc: svc.unbind_lock(ACTOR, org, room, device))


# --- door groups -------------------------------------------------------------------------
async def _group(svc: PropertyService, org: str, group: str) -> BaseModel:
    return door_group_out(await svc.door_group(org, group), await svc.doors_of_group(org, group))


@group_app.command("create")
def group_create(
    org: OrgOption,
    scope: Annotated[str, typer.Option("--scope", help="site | building | unit.")],
    scope_id: Annotated[str, typer.Option("--scope-id", help="Id of the site, building or unit.")],
    name: NameOption,
    data_dir: DataDirOption = None,
) -> None:
    async def work(svc: PropertyService) -> BaseModel:
        group = await svc.create_door_group(ACTOR, org, scope, scope_id, name)
        return door_group_out(group, ())

    _do(data_dir, work)


@group_app.command("add-door")
def group_add_door(
    group: IdArg, device: DeviceArg, org: OrgOption, data_dir: DataDirOption = None
) -> None:
    async def work(svc: PropertyService) -> BaseModel:
        await svc.add_door(ACTOR, org, group, device)
        return await _group(svc, org, group)

    _do(data_dir, work)


@group_app.command("remove-door")
def group_remove_door(
    group: IdArg, device: DeviceArg, org: OrgOption, data_dir: DataDirOption = None
) -> None:
    _do(data_dir, lambda svc: svc.remove_door(ACTOR, org, group, device))


@group_app.command("delete")
def group_delete(group: IdArg, org: OrgOption, data_dir: DataDirOption = None) -> None:
    _do(data_dir, lambda svc: svc.delete_door_group(ACTOR, org, group))
