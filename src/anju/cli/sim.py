"""``anju sim``: run simulated locks from a factory file against a broker (docs/device-sdk.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from anju.cli.common import fail, is_tty, run
from anju.device.client import ClientOptions
from anju.device.sim import SimSummary, Simulator, load_factory
from anju.errors import AnjuError


def _broker(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"--broker must be HOST:PORT, not {value!r}", code=2)
    return host, int(port)


def sim(
    devices: Annotated[int, typer.Option("--devices", help="How many devices to run (≥ 1).")],
    factory: Annotated[
        Path, typer.Option("--factory", help="Factory file from `anju devices manufacture`.")
    ],
    broker: Annotated[
        str, typer.Option("--broker", help="MQTT broker HOST:PORT.")
    ] = "127.0.0.1:1883",
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Device data (event buffers); default <factory dir>/sim-data."),
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    event_interval: Annotated[
        float,
        typer.Option(
            "--event-interval",
            help="Mean seconds between door events per device (0: none).",
        ),
    ] = 30.0,
) -> None:
    """模拟门锁 / Run simulated locks (reference firmware) in one process."""
    if devices < 1:
        fail("--devices must be at least 1", code=2)
    host, port = _broker(broker)
    try:
        made = load_factory(factory)
    except AnjuError as exc:
        fail(exc.message)
    if len(made) < devices:
        fail(f"{factory} holds {len(made)} devices, fewer than --devices {devices}")
    simulator = Simulator(
        made[:devices],
        data or factory.resolve().parent / "sim-data",
        options=ClientOptions(host=host, port=port),
        event_interval_s=event_interval,
    )
    tty = is_tty()
    ticks = 0

    def show(summary: SimSummary) -> None:
        nonlocal ticks
        ticks += 1
        if tty:
            typer.echo("\r" + summary.line() + "   ", nl=False)
        elif ticks % 5 == 0:
            typer.echo(summary.line())

    try:
        final = run(simulator.run(duration_s=duration, on_tick=show))
    except KeyboardInterrupt:
        final = simulator.summary()
    if tty:
        typer.echo("")
    typer.echo(final.line())
