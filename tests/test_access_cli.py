"""``anju access …`` against the test's database (SQLite and PostgreSQL): grants, credentials
with per-lock delivery state, offline codes that open the real lock, freezes, anomalies, the
sweep, and organisation isolation."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from anju.cli.main import app
from anju.device.client import DeviceIdentity
from anju.device.lock import LockFirmware
from anju.devices.ca import ca_public_key
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.settings import Settings
from tests.support.access import AccessWorld, access_world
from tests.support.registry import audit_entries

pytestmark = pytest.mark.req("L13", "L15", "R14")

runner = CliRunner()


@pytest.fixture
async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> AccessWorld:
    return await access_world(platform, clock, tmp_path)


async def invoke(settings: Settings, *args: str) -> Result:
    """Run ``anju access …`` on the test's database (in a thread: the CLI has its own loop)."""
    env = {"ANJU_DATABASE_URL": settings.resolved_database_url}
    argv = ["access", *args, "--data-dir", str(settings.data_dir)]
    return await asyncio.to_thread(runner.invoke, app, argv, env=env)


async def ok(settings: Settings, *args: str) -> Any:
    result = await invoke(settings, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_grants_credentials_offline_codes_and_freezes_from_the_cli(
    platform: Platform, settings: Settings, world: AccessWorld, tmp_path: Path
) -> None:
    org = world.org_a
    until = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    doors = ("--device", world.room.device_id, "--device", world.entrance.device_id)
    grant = await ok(
        settings, "grant", "create", "--org", org, "--subject", "guest-9",
        "--person-type", "guest", *doors, "--valid-until", until,
    )  # fmt: skip
    assert sorted(grant["device_ids"]) == sorted([world.room.device_id, world.entrance.device_id])
    gid = grant["id"]

    issued = await invoke(settings, "credential", "issue", gid, "--org", org, "--kind", "passcode")
    assert issued.exit_code == 0, issued.output
    digits = json.loads(issued.stdout)["passcode"]
    assert len(digits) == 8
    assert "shown once" in issued.stderr
    listed = await ok(settings, "credential", "list", gid, "--org", org)
    assert [sorted(d["state"] for d in c["deliveries"]) for c in listed] == [["queued", "queued"]]
    assert digits not in json.dumps(listed)

    offline = await ok(
        settings, "credential", "issue", gid, "--org", org, "--kind", "offline",
        "--device", world.room.device_id, "--offline-kind", "period",
    )  # fmt: skip
    code = offline["offline_code"]
    assert offline["offline"]["device_id"] == world.room.device_id
    identity = DeviceIdentity(
        world.room.device_id, world.room.certificate, ca_public_key(platform.keys)
    )
    lock = LockFirmware(
        identity, world.room.se, tmp_path / "lock", now_ms=lambda: int(time.time() * 1000)
    )
    assert lock.access.enter_passcode(code).granted  # the CLI runs on the system clock
    revoked = await ok(settings, "credential", "revoke", offline["credential"]["id"], "--org", org)
    assert revoked["status"] == "revoked"
    clear = revoked["clear_codes"][world.room.device_id]
    assert lock.access.enter_passcode(clear).reason == "cleared"
    assert lock.access.enter_passcode(code).reason == "revoked"
    listed = await ok(settings, "credential", "list", gid, "--org", org)
    (kept,) = [c for c in listed if c["kind"] == "offline"]
    assert kept["offline"]["serial"] == offline["offline"]["serial"]
    assert [d["state"] for d in kept["deliveries"]] == ["removing"]
    assert code not in json.dumps(listed)

    finger = await invoke(
        settings, "credential", "issue", gid, "--org", org, "--kind", "fingerprint"
    )
    assert finger.exit_code == 1
    assert "credential_unsupported" in finger.output

    frozen = await ok(settings, "freeze", "guest-9", "--org", org, "--reason", "arrears")
    assert frozen["status"] == "frozen"
    assert {op["op"] for op in frozen["locks"]} == {"freeze"}
    refused = await invoke(settings, "credential", "issue", gid, "--org", org, "--kind", "passcode")
    assert refused.exit_code == 1
    assert "access_frozen" in refused.output
    lifted = await ok(settings, "unfreeze", frozen["id"], "--org", org)
    assert lifted["status"] == "lifted"

    assert isinstance(await ok(settings, "anomalies", "--org", org), list)
    ended = await ok(settings, "grant", "revoke", gid, "--org", org)
    assert ended["status"] == "revoked"
    assert [g["id"] for g in await ok(settings, "grant", "list", "--org", org)] == [gid]
    swept = await ok(settings, "expire")
    assert set(swept) == {"expired_grants", "ended_credentials", "requeued"}
    assert [e.actor for e in await audit_entries(platform, "access.grant.created")] == ["cli"]


async def test_the_cli_acts_inside_one_organisation(settings: Settings, world: AccessWorld) -> None:
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    grant = await ok(
        settings, "grant", "create", "--org", world.org_a, "--subject", "guest-1",
        "--person-type", "guest", "--place-kind", "room", "--valid-until", until,
    )  # fmt: skip
    assert grant["device_ids"] == [world.room.device_id]  # not org B's room 101
    other = await invoke(settings, "credential", "list", grant["id"], "--org", world.org_b)
    assert other.exit_code == 1
    assert "not_found" in other.output
    assert await ok(settings, "grant", "list", "--org", world.org_b) == []
    foreign = await invoke(
        settings, "grant", "create", "--org", world.org_b, "--subject", "guest-1",
        "--person-type", "guest", "--device", world.room.device_id, "--valid-until", until,
    )  # fmt: skip
    assert foreign.exit_code == 1
    naive = await invoke(
        settings, "grant", "create", "--org", world.org_a, "--subject", "guest-1",
        "--person-type", "guest", "--device", world.room.device_id,
        "--valid-until", "2030-01-01T00:00:00",
    )  # fmt: skip
    assert naive.exit_code == 1
    assert "UTC offset" in naive.output
