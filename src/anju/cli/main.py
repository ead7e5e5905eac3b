"""Entry point of the ``anju`` command."""

from __future__ import annotations

import typer

from anju import __version__
from anju.cli import (
    access,
    admin,
    audit,
    consent,
    db,
    devices,
    face,
    firmware,
    gateway,
    journey,
    keys,
    people,
    privacy,
    reporting,
    serve,
    sim,
)

app = typer.Typer(
    name="anju",
    help="安居 anju — real-name smart locks and rental housing, PI protected by design.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("sim")(sim.sim)
app.command("demo")(journey.demo)
app.add_typer(db.app, name="db")
app.add_typer(admin.app, name="admin")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(privacy.app, name="privacy")
app.add_typer(devices.app, name="devices")
app.add_typer(gateway.app, name="gateway")
app.add_typer(firmware.app, name="firmware")
app.add_typer(face.app, name="face")
app.add_typer(access.app, name="access")
app.add_typer(people.app, name="people")
app.add_typer(consent.app, name="consent")
app.add_typer(consent.retention_app, name="retention")
app.add_typer(reporting.app, name="reporting")


@app.command("version")
def version() -> None:
    """Print anju's version."""
    typer.echo(__version__)


def main() -> None:
    app()
