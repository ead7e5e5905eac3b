"""``anju privacy …``: the PI inventory."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from anju.privacy.fields import INVENTORY

app = typer.Typer(help="个人信息清单 / Personal information: the inventory.", no_args_is_help=True)


class InventoryFormat(StrEnum):
    TABLE = "table"
    MARKDOWN = "markdown"
    JSON = "json"


@app.command("inventory")
def inventory_command(
    fmt: Annotated[
        InventoryFormat, typer.Option("--format", help="table, markdown (docs/privacy.md) or json")
    ] = InventoryFormat.TABLE,
) -> None:
    """Print every declared PI field: category, sensitivity, purposes, retention, masking."""
    if fmt is InventoryFormat.MARKDOWN:
        text = INVENTORY.render_markdown()
    elif fmt is InventoryFormat.JSON:
        text = INVENTORY.render_json()
    else:
        text = INVENTORY.render_table()
    typer.echo(text, nl=False)
