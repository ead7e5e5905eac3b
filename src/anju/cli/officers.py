"""``anju officers jurisdiction set|show``: an officer account's region-code prefixes
(docs/officers.md). The platform operator's tool: acts as actor ``cli``, audited like the API."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from anju.cli.common import DataDirOption
from anju.cli.common import in_transaction as _transaction
from anju.officers.service import OfficerService

app = typer.Typer(help="执法人员辖区 / Officers' jurisdictions.", no_args_is_help=True)
jurisdiction_app = typer.Typer(help="辖区 / Jurisdiction.", no_args_is_help=True)
app.add_typer(jurisdiction_app, name="jurisdiction")

AccountArg = Annotated[str, typer.Argument(help="The officer's account id.")]


def _print(account_id: str, prefixes: list[str]) -> None:
    typer.echo(json.dumps({"account_id": account_id, "region_prefixes": prefixes}))


@jurisdiction_app.command("set")
def set_jurisdiction(
    account_id: AccountArg,
    region: Annotated[
        list[str] | None,
        typer.Option("--region", help="GB/T 2260 prefix, 2–6 digits (repeatable; none clears)."),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Replace the officer's jurisdiction."""
    prefixes = _transaction(
        data_dir,
        lambda p, s: OfficerService(p, s).set_jurisdiction(None, account_id, region or []),
    )
    _print(account_id, prefixes)


@jurisdiction_app.command("show")
def show_jurisdiction(account_id: AccountArg, data_dir: DataDirOption = None) -> None:
    prefixes = _transaction(
        data_dir, lambda p, s: OfficerService(p, s).jurisdiction(None, account_id)
    )
    _print(account_id, prefixes)
