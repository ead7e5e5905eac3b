"""``anju stays …``: list bookings, mark no-shows, poll the iCal feeds (docs/stays.md)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from anju.cli.common import DataDirOption, run, settings_for
from anju.platform import open_platform
from anju.stays.rules import BookingStatus
from anju.stays.service import BookingService, booking_view
from anju.stays.tasks import mark_no_shows, poll_all_feeds

app = typer.Typer(help="住宿 / Stays: bookings, no-shows, iCal feeds.", no_args_is_help=True)


@app.command("bookings")
def bookings_command(
    org: Annotated[str, typer.Option("--org", help="The organisation's id.")],
    status: Annotated[
        BookingStatus | None, typer.Option("--status", help="Only bookings in this state.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    data_dir: DataDirOption = None,
) -> None:
    """预订列表 / The organisation's bookings by start (contacts masked)."""
    settings = settings_for(data_dir)

    async def go() -> list[dict[str, object]]:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            rows = await BookingService(platform, session).search(
                org, status=None if status is None else status.value, limit=limit
            )
            return [booking_view(b) for b in rows]

    for view in run(go()):
        if as_json:
            typer.echo(json.dumps(view, ensure_ascii=False, sort_keys=True))
        else:
            typer.echo(
                f"{view['id']}  {view['room_id']:>8}  {view['starts_local']} → "
                f"{view['ends_local']}  {view['status']:<11} {view['channel']}"
            )


@app.command("no-shows")
def no_shows_command(data_dir: DataDirOption = None) -> None:
    """标记未到 / Mark bookings not checked in past their start + grace as no-shows."""
    settings = settings_for(data_dir)

    async def go() -> int:
        async with open_platform(settings) as platform:
            return await mark_no_shows(platform)

    typer.echo(f"no-shows marked: {run(go())}")


@app.command("poll-feeds")
def poll_feeds_command(data_dir: DataDirOption = None) -> None:
    """同步日历 / Poll every room's iCal feed once."""
    settings = settings_for(data_dir)

    async def go() -> int:
        async with open_platform(settings) as platform:
            return await poll_all_feeds(platform)

    typer.echo(f"feeds read: {run(go())}")
