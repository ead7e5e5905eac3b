"""``anju admin …``."""

from __future__ import annotations

import typer

app = typer.Typer(help="admin commands.", no_args_is_help=True)
