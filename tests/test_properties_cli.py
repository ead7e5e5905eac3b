"""``anju properties …`` against the test's database (SQLite and PostgreSQL): build a tree, bind
a lock and a common door, read the room back; bad input exits 1 with a stable code."""

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
from anju.platform import Platform
from anju.settings import Settings
from tests.support.access import access_world
from tests.support.registry import audit_entries

pytestmark = pytest.mark.req("R10", "R13", "L1")

runner = CliRunner()


async def invoke(settings: Settings, *args: str) -> Result:
    """Run ``anju properties …`` on the test's database (in a thread: the CLI has its own loop)."""
    env = {"ANJU_DATABASE_URL": settings.resolved_database_url}
    argv = ["properties", *args, "--data-dir", str(settings.data_dir)]
    return await asyncio.to_thread(runner.invoke, app, argv, env=env)


async def ok(settings: Settings, *args: str) -> Any:
    result = await invoke(settings, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_a_tree_with_locks_from_the_cli(
    platform: Platform, settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    world = await access_world(platform, clock, tmp_path)
    org = world.org_a
    site = await ok(
        settings, "site", "create", "--org", org, "--name", "青年公寓", "--kind", "public_rental",
        "--region-code", "440305", "--province", "广东省", "--city", "深圳市",
        "--district", "南山区", "--road", "科技南路8号",
    )  # fmt: skip
    assert site["address"]["district"] == "南山区"
    building = await ok(settings, "building", "create", "--org", org, "--site", site["id"],
                        "--name", "A栋")  # fmt: skip
    unit = await ok(settings, "unit", "create", "--org", org, "--building", building["id"],
                    "--name", "1单元", "--floors", "30")  # fmt: skip
    room = await ok(settings, "room", "create", "--org", org, "--unit", unit["id"],
                    "--number", "808", "--floor", "8")  # fmt: skip
    await ok(settings, "room", "bind", room["id"], world.room.device_id, "--org", org)
    group = await ok(settings, "door-group", "create", "--org", org, "--scope", "building",
                     "--scope-id", building["id"], "--name", "单元门")  # fmt: skip
    await ok(
        settings, "door-group", "add-door", group["id"], world.entrance.device_id, "--org", org
    )
    detail = await ok(settings, "room", "get", room["id"], "--org", org)
    assert detail["standard_address"] == "广东省深圳市南山区科技南路8号A栋1单元808室"
    assert detail["room_locks"] == [world.room.device_id]
    assert detail["common_doors"] == [world.entrance.device_id]
    assert [
        r["number"] for r in await ok(settings, "room", "list", "--org", org, "--unit", unit["id"])
    ] == ["808"]
    assert len(await audit_entries(platform, "properties.room.lock_bound")) == 1

    # Bad input and other organisations: exit 1 with the stable code, nothing written.
    for args, code in (
        (("room", "bind", room["id"], world.other.device_id, "--org", org), "lock_not_found"),
        (("room", "get", room["id"], "--org", world.org_b), "room_not_found"),
        (("room", "create", "--org", org, "--unit", unit["id"], "--number", "808",
          "--floor", "8"), "room_number_taken"),
        (("site", "create", "--org", org, "--name", "x", "--kind", "hotel",
          "--region-code", "4403", "--province", "广东省"), "invalid_region_code"),
        (("site", "delete", site["id"], "--org", org), "property_not_empty"),
    ):  # fmt: skip
        result = await invoke(settings, *args)
        assert result.exit_code == 1, result.output
        assert f"[{code}]" in result.output
    assert len(await ok(settings, "site", "list", "--org", org)) == 1
