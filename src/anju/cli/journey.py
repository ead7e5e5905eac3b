"""``anju demo``: the whole stay journey on the embedded default, printed step by step."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from anju.cli.common import fail, settings_for
from anju.demo.guests import Guest, generated_guests, load_guests
from anju.demo.journey import StayJourney
from anju.demo.steps import Journey
from anju.demo.world import check_fresh, demo_settings, demo_world
from anju.errors import AnjuError
from anju.kit import aio
from anju.kit.clock import SystemClock


def demo(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="A new or empty directory; it is kept afterwards.")
    ],
    guests_file: Annotated[
        Path | None,
        typer.Option(
            "--guests", help='JSON list of {"name", "id_number", "phone"} (default: generated).'
        ),
    ] = None,
) -> None:
    """演示 / Run the stay journey with simulated locks; exit 0 only if every step behaved.

    Booking → consent → verification → check-in → passcode and eKey unlock → wrong-code lockout
    and alarm → freeze and unfreeze → check-out and lock wipe → retention sweep → audit verified.
    With ANJU_DATABASE_URL set it runs on PostgreSQL instead of SQLite.
    """
    settings = settings_for(data_dir)
    try:
        check_fresh(settings)
        today = SystemClock().now().date()
        guests: list[Guest] = (
            load_guests(guests_file, today) if guests_file else generated_guests(2)
        )
    except AnjuError as exc:
        fail(f"{exc.message} [{exc.code}]", code=2)
    logging.getLogger("anju").setLevel(logging.WARNING)
    logging.getLogger("gmqtt").setLevel(logging.ERROR)  # its teardown chatter
    journey = Journey(out=typer.echo)

    async def go() -> None:
        async with demo_world(demo_settings(settings)) as world:
            typer.echo(f"安居演示 / anju demo — data in {settings.data_dir}")
            await StayJourney(world, guests, journey).run()

    try:
        aio.run(go())
    except AnjuError as exc:
        fail(f"{exc.message} [{exc.code}]", code=1)
    typer.echo(journey.summary())
    if not journey.ok:
        raise typer.Exit(1)
    typer.echo(f"查看 / inspect: anju audit verify --data-dir {settings.data_dir}")
