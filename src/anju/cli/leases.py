"""``anju leases …``: create, activate, pay, terminate, show, list, the arrears sweep and the
grace setting (docs/leases.md, "CLI").

Acts as actor "cli" inside the organisation ``--org`` names; output is JSON; a refusal prints
``anju: message [code]`` and exits 1 with nothing written.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from anju.cli.common import DataDirOption, fail, run, settings_for
from anju.leases.schemas import lease_out, lease_summary, payment_out
from anju.leases.service import LeaseService, LeaseTerms, PaymentIn
from anju.leases.tasks import sweep_leases
from anju.platform import open_platform

ACTOR = "cli"
Work = Callable[[LeaseService], Awaitable[Any]]

app = typer.Typer(
    help="租约：租户、租金、付款、欠费冻结 / Leases: tenants, rent, payments, arrears freeze.",
    no_args_is_help=True,
)
OrgOption = Annotated[str, typer.Option("--org", help="Organisation id.")]
LeaseArg = Annotated[str, typer.Argument(help="Lease id.")]


def _echo(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") for v in value]
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str))


def _do(data_dir: Any, work: Work) -> None:
    """Run ``work`` in one transaction and print its answer as JSON."""

    async def go() -> Any:
        settings = settings_for(data_dir)
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            return await work(LeaseService(platform, session))

    _echo(run(go()))


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: a date YYYY-MM-DD (local, Asia/Shanghai)")


@app.command("create")
def create(
    org: OrgOption,
    room: Annotated[str, typer.Option("--room", help="Room id.")],
    tenant: Annotated[list[str], typer.Option("--tenant", help="Tenant subject id (repeatable).")],
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last day (inclusive), YYYY-MM-DD.")],
    rent_fen: Annotated[int, typer.Option("--rent-fen", help="Monthly rent in fen (分).")],
    due_day: Annotated[int, typer.Option("--due-day", help="Day of month rent is due, 1–28.")],
    grace_days: Annotated[
        int | None, typer.Option("--grace-days", help="Days of grace (default: the org's).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a draft lease with its rent schedule."""
    terms = LeaseTerms(
        room,
        tuple(tenant),
        _day(start, "--start"),
        _day(end, "--end"),
        rent_fen,
        due_day,
        grace_days,
    )

    async def work(svc: LeaseService) -> BaseModel:
        return lease_out(await svc.create(ACTOR, org, terms))

    _do(data_dir, work)


@app.command("activate")
def activate(lease: LeaseArg, org: OrgOption, data_dir: DataDirOption = None) -> None:
    """draft → active: the tenants get access to the room's locks and common doors."""

    async def work(svc: LeaseService) -> BaseModel:
        return lease_out(await svc.activate(ACTOR, org, lease))

    _do(data_dir, work)


@app.command("pay")
def pay(
    lease: LeaseArg,
    org: OrgOption,
    amount_fen: Annotated[int, typer.Option("--amount-fen", help="Amount in fen (分).")],
    reference: Annotated[str, typer.Option("--reference", help="Transaction reference.")],
    key: Annotated[str, typer.Option("--idempotency-key", help="Applied once per key.")],
    paid_at: Annotated[
        datetime | None, typer.Option("--paid-at", help="ISO time with offset (default now).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Record a payment; clearing the arrears unfreezes the tenants at once."""

    async def work(svc: LeaseService) -> BaseModel:
        when = paid_at or svc.clock.now()
        row, replayed = await svc.pay(
            ACTOR, org, lease, PaymentIn(amount_fen, when, reference, key)
        )
        return payment_out(row, replayed)

    _do(data_dir, work)


@app.command("terminate")
def terminate(
    lease: LeaseArg,
    org: OrgOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (no personal details).")],
    data_dir: DataDirOption = None,
) -> None:
    """End the lease now: access ends and the locks wipe the tenants."""

    async def work(svc: LeaseService) -> BaseModel:
        return lease_out(await svc.terminate(ACTOR, org, lease, reason))

    _do(data_dir, work)


@app.command("show")
def show(lease: LeaseArg, org: OrgOption, data_dir: DataDirOption = None) -> None:
    """A lease with its tenants, instalments and payments."""

    async def work(svc: LeaseService) -> BaseModel:
        return lease_out(await svc.view(org, lease))

    _do(data_dir, work)


@app.command("list")
def list_leases(
    org: OrgOption,
    status: Annotated[str | None, typer.Option("--status", help="draft | active | …")] = None,
    data_dir: DataDirOption = None,
) -> None:
    async def work(svc: LeaseService) -> list[BaseModel]:
        return [lease_summary(r) for r in await svc.leases(org, status=status, limit=500)]

    _do(data_dir, work)


@app.command("grace")
def grace(
    org: OrgOption,
    days: Annotated[int, typer.Option("--days", help="Grace period of new leases, 0–60.")],
    data_dir: DataDirOption = None,
) -> None:
    """Set the organisation's default grace period."""

    async def work(svc: LeaseService) -> dict[str, int]:
        return {"grace_days": await svc.set_grace_days(ACTOR, org, days)}

    _do(data_dir, work)


@app.command("sweep")
def sweep(data_dir: DataDirOption = None) -> None:
    """Once, now: end leases past their period, freeze tenants in arrears, unfreeze the rest."""

    async def go() -> dict[str, list[str]]:
        async with open_platform(settings_for(data_dir)) as platform:
            result = await sweep_leases(platform)
        return {"ended": result.ended, "frozen": result.frozen, "unfrozen": result.unfrozen}

    _echo(run(go()))
