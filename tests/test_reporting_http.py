"""The regulator report outbox over HTTP (``reports.read``) and from the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from anju.cli.demo import demo_regulator
from anju.cli.main import app
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.reporting.models import Report
from anju.reporting.service import ReportingService
from anju.settings import Settings
from tests.support.accounts import login_token, make_admin, make_member_with_role
from tests.support.http import api_client, bearer, code_of, signed_in
from tests.support.people import people
from tests.support.reporting import fake_regulator, register_guest, send_all, sending_to

runner = CliRunner()


async def reports_of(platform: Platform) -> list[Report]:
    async with platform.db.transaction() as session:
        return list((await session.execute(select(Report))).scalars())


async def queued_check_in(platform: Platform, org_id: str) -> str:
    subject = await register_guest(platform, org_id, people(1)[0])
    async with platform.db.transaction() as session:
        report = await ReportingService(platform, session).queue_check_in(
            org_id=org_id, stay_id="stay-9", subject_id=subject, room_id="room-9",
            at=platform.clock.now(),
        )  # fmt: skip
        return report.id


@pytest.mark.req("L6", "L7", "L17")
async def test_reports_and_delivery_log_are_read_with_reports_read_only(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    admin = await make_admin(platform)
    assert admin.org_id is not None
    report_id = await queued_check_in(platform, admin.org_id)
    other = await make_admin(platform, login="sa-two", org="Org B")
    with fake_regulator(platform) as regulator:
        regulator.fail_with = 503
        assert await send_all(sending_to(platform, regulator, tmp_path)) == 1
    async with api_client(platform) as client:
        headers = await signed_in(client, clock, admin, step_up=False)
        listed = await client.get("/api/v1/reports", headers=headers)
        assert listed.status_code == 200, listed.text
        (row,) = listed.json()
        assert (row["id"], row["kind"], row["status"], row["attempts"]) == (
            report_id, "check_in", "pending", 1,
        )  # fmt: skip
        detail = (await client.get(f"/api/v1/reports/{report_id}", headers=headers)).json()
        assert [(a["status_code"], a["outcome"]) for a in detail["delivery_log"]] == [
            (503, "retry")
        ]
        assert "name" not in detail
        assert "document_number" not in str(detail)
        filtered = await client.get("/api/v1/reports?status=delivered", headers=headers)
        assert filtered.json() == []
        assert (await client.get("/api/v1/reports?status=lost", headers=headers)).status_code == 422
        # Another organisation does not see it; a front-desk clerk may not read the outbox.
        other_headers = await signed_in(client, clock, other, step_up=False)
        response = await client.get(f"/api/v1/reports/{report_id}", headers=other_headers)
        assert response.status_code == 404
        assert (await client.get("/api/v1/reports", headers=other_headers)).json() == []
        token = await login_token(platform, admin.login)
        desk = bearer(
            await make_member_with_role(platform, clock, admin, token, "desk", "front_desk")
        )
        response = await client.get("/api/v1/reports", headers=desk)
        assert response.status_code == 403
        assert code_of(response) == "forbidden"
        assert (await client.get("/api/v1/reports")).status_code == 401


async def invoke(settings: Settings, *args: str) -> Result:
    """Run ``anju reporting …`` on the test's database (in a thread: the CLI has its own loop)."""
    env = {"ANJU_DATABASE_URL": settings.resolved_database_url}
    argv = ["reporting", *args, "--data-dir", str(settings.data_dir)]
    return await asyncio.to_thread(runner.invoke, app, argv, env=env)


@pytest.mark.req("L6", "L17")
async def test_cli_lists_the_outbox_shows_the_log_and_retries_parked_reports(
    platform: Platform, settings: Settings, tmp_path: Path
) -> None:
    report_id = await queued_check_in(platform, "org-1")
    with fake_regulator(platform) as regulator:
        regulator.fail_with = 400
        assert await send_all(sending_to(platform, regulator, tmp_path)) == 1
    listed = await invoke(settings, "outbox", "--status", "parked")
    assert listed.exit_code == 0, listed.output
    assert report_id in listed.stdout
    assert "parked" in listed.stdout
    log = await invoke(settings, "log", report_id)
    assert log.exit_code == 0, log.output
    assert "status=400" in log.stdout
    assert "parked" in log.stdout
    retried = await invoke(settings, "retry", report_id)
    assert retried.exit_code == 0, retried.output
    again = await invoke(settings, "retry", report_id)
    assert again.exit_code == 1
    assert "conflict" in again.output
    missing = await invoke(settings, "log", "no-such-report")
    assert missing.exit_code == 1
    assert "not_found" in missing.output
    pending = await invoke(settings, "outbox", "--status", "pending")
    assert report_id in pending.stdout


@pytest.mark.req("L6", "L1")
async def test_the_demo_reports_to_a_fake_regulator_unless_one_is_configured(
    platform: Platform, tmp_path: Path
) -> None:
    report_id = await queued_check_in(platform, "org-1")
    with demo_regulator(platform, 0) as same:  # no demo building
        assert same is platform
    with demo_regulator(platform, 2) as demo:
        assert demo.settings.regulator_enabled
        assert await send_all(demo) == 1
    assert [(r.id, r.status) for r in await reports_of(platform)] == [(report_id, "delivered")]
    with fake_regulator(platform) as regulator:
        configured = sending_to(platform, regulator, tmp_path)
        with demo_regulator(configured, 2) as kept:
            assert kept is configured  # a configured regulator is never replaced
