"""``anju privacy …``."""

from __future__ import annotations

import typer

app = typer.Typer(help="privacy commands.", no_args_is_help=True)
