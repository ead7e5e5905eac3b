"""``anju leases …`` against the test's database (SQLite and PostgreSQL): create, activate, the
sweep freezing a tenant in arrears, a payment unfreezing at once, a replay applied once, and
refusals exiting 1 with stable codes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from anju.cli.main import app
from anju.kit.clock import FixedClock
from anju.leases.service import LeaseService
from anju.platform import Platform
from anju.protocol.access import FREEZE_COMMAND, UNFREEZE_COMMAND
from anju.settings import Settings
from tests.support.access import commands_of
from tests.support.leases import lease_world

pytestmark = pytest.mark.req("R13", "R14")

runner = CliRunner()


async def invoke(settings: Settings, *args: str) -> Result:
    """Run ``anju leases …`` on the test's database (in a thread: the CLI has its own loop)."""
    env = {"ANJU_DATABASE_URL": settings.resolved_database_url}
    argv = ["leases", *args, "--data-dir", str(settings.data_dir)]
    return await asyncio.to_thread(runner.invoke, app, argv, env=env)


async def ok(settings: Settings, *args: str) -> Any:
    result = await invoke(settings, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_sweep_freezes_and_payment_unfreezes_from_the_cli(
    platform: Platform, settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    w = await lease_world(platform, clock, tmp_path)
    org = w.org
    # The CLI runs on the wall clock (late 2026 or after): the first rents are long overdue.
    lease = await ok(
        settings, "create", "--org", org, "--room", w.tree.room_id, "--tenant", w.tenants[0],
        "--start", "2026-01-01", "--end", "2030-06-30", "--rent-fen", "1000", "--due-day", "1",
    )  # fmt: skip
    # Activated on the test clock (2026-01-01: nothing due yet), swept on the wall clock.
    async with platform.db.transaction() as session:
        view = await LeaseService(platform, session).activate("test", org, lease["id"])
    assert not view.lease.in_arrears
    swept = await ok(settings, "sweep")
    assert swept["frozen"] == [lease["id"]]
    lock = w.access.room.device_id
    assert len(await commands_of(platform, lock, FREEZE_COMMAND)) == 1
    owed = str(lease["outstanding_fen"])
    pay = ("pay", lease["id"], "--org", org, "--amount-fen", owed, "--reference", "bank-77",
           "--idempotency-key", "bank-77")  # fmt: skip
    assert (await ok(settings, *pay))["replayed"] is False
    assert len(await commands_of(platform, lock, UNFREEZE_COMMAND)) == 1
    assert (await ok(settings, *pay))["replayed"] is True
    shown = await ok(settings, "show", lease["id"], "--org", org)
    assert (shown["outstanding_fen"], shown["in_arrears"], len(shown["payments"])) == (0, False, 1)
    assert (await ok(settings, "sweep"))["frozen"] == []

    for args, code in (
        (("activate", lease["id"], "--org", org), "lease_state_conflict"),
        (("show", lease["id"], "--org", w.access.org_b), "lease_not_found"),
        (("pay", lease["id"], "--org", org, "--amount-fen", "1", "--reference", "r",
          "--idempotency-key", "k2"), "overpayment"),
        (("grace", "--org", org, "--days", "99"), "invalid_input"),
    ):  # fmt: skip
        result = await invoke(settings, *args)
        assert result.exit_code == 1, result.output
        assert f"[{code}]" in result.output
    result = await invoke(settings, "create", "--org", org, "--room", w.tree.room_id,
                          "--tenant", w.tenants[0], "--start", "2026-02-30", "--end", "2026-03-01",
                          "--rent-fen", "1", "--due-day", "1")  # fmt: skip
    assert result.exit_code == 1
    assert "--start" in result.output
