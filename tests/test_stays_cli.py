"""``anju stays bookings`` / ``no-shows`` / ``poll-feeds`` on an embedded installation."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anju.cli.common import settings_for
from anju.cli.main import app
from anju.platform import open_platform
from anju.stays.models import Booking
from tests.support.accounts import make_admin
from tests.support.properties import property_tree

runner = CliRunner()


def _seed(data_dir: Path) -> str:
    """Two bookings written as the service would (a room and a period; no contact)."""

    async def go() -> str:
        settings = settings_for(data_dir)
        now = datetime.now(UTC)
        async with open_platform(settings) as platform:
            admin = await make_admin(platform, "sa-cli", "Hotel CLI")
            assert admin.org_id is not None
            tree = await property_tree(platform, admin.org_id, kind="hotel", room="101")
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            for i, start in enumerate((now - timedelta(days=3), now + timedelta(days=3))):
                session.add(
                    Booking(
                        id=f"b{i}",
                        org_id=tree.org_id,
                        room_id=tree.room_id,
                        starts_at=start,
                        ends_at=start + timedelta(days=1),
                        headcount=1,
                        channel="direct",
                        status="booked",
                        contact_subject=f"psn_cli{i}",
                        contact_masked="{}",
                        headcount_override=False,
                        created_by="cli",
                        created_at=now,
                        updated_at=now,
                    )
                )

        return tree.org_id

    return asyncio.run(go())


@pytest.mark.req("L1")
def test_list_bookings_and_mark_no_shows(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert runner.invoke(app, ["db", "upgrade", "--data-dir", str(data_dir)]).exit_code == 0
    org = _seed(data_dir)
    listed = runner.invoke(app, ["stays", "bookings", "--org", org, "--data-dir", str(data_dir)])
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("booked") == 2
    assert "+08:00" in listed.output  # shown in Asia/Shanghai
    marked = runner.invoke(app, ["stays", "no-shows", "--data-dir", str(data_dir)])
    assert marked.output.strip() == "no-shows marked: 1"
    shown = runner.invoke(
        app,
        ["stays", "bookings", "--org", org, "--status", "no_show", "--json",
         "--data-dir", str(data_dir)],
    )  # fmt: skip
    assert [json.loads(line)["id"] for line in shown.output.splitlines()] == ["b0"]
    polled = runner.invoke(app, ["stays", "poll-feeds", "--data-dir", str(data_dir)])
    assert polled.output.strip() == "feeds read: 0"
    wrong = runner.invoke(app, ["stays", "bookings", "--org", org, "--status", "gone"])
    assert wrong.exit_code == 2
