"""``anju officers jurisdiction set|show`` on the test's database: validated, audited, and only
for officer accounts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from anju.cli.main import app
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.settings import Settings
from tests.support.accounts import make_admin
from tests.support.housing import member_with_id
from tests.support.registry import audit_entries

runner = CliRunner()


async def invoke(settings: Settings, *args: str) -> Result:
    env = {"ANJU_DATABASE_URL": settings.resolved_database_url}
    argv = ["officers", "jurisdiction", *args, "--data-dir", str(settings.data_dir)]
    return await asyncio.to_thread(runner.invoke, app, argv, env=env)


@pytest.mark.req("R14", "L7")
async def test_jurisdiction_from_the_cli(
    platform: Platform, settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    police = await make_admin(platform, login="sa-police", org="Police")
    officer_id, _ = await member_with_id(platform, clock, police, "officer-1", "officer")
    desk_id, _ = await member_with_id(platform, clock, police, "desk-1", "front_desk")
    result = await invoke(settings, "set", officer_id, "--region", "110105", "--region", "31")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["region_prefixes"] == ["110105", "31"]
    result = await invoke(settings, "show", officer_id)
    assert json.loads(result.stdout)["region_prefixes"] == ["110105", "31"]
    for args in (("set", officer_id, "--region", "11a"), ("set", desk_id, "--region", "11")):
        result = await invoke(settings, *args)
        assert result.exit_code == 1, result.output
    result = await invoke(settings, "show", "no-such-account")
    assert (result.exit_code, "not_found" in result.output) == (1, True)
    [entry] = await audit_entries(platform, "officers.jurisdiction_set")
    assert (entry.actor, entry.target) == ("cli", f"account:{officer_id}")
