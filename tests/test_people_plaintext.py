"""Acceptance (issue 6): register 100 people — names in many scripts (rare CJK, ·), valid
document numbers, phones, e-mails, addresses — through the HTTP API with CTID verification,
then scan the raw database (SQLite file + WAL, or a pg_dump of the schema) and every captured
log line for each of those values in clear. None may be found."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from anju.app import create_app
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.accounts import login_token, make_admin, make_member_with_role
from tests.support.http import bearer
from tests.support.people import consenting_subject, fake_ctid, people
from tests.support.plaintext_scan import scan_logs, scan_platform_storage

COUNT = 100


@pytest.mark.slow
@pytest.mark.req("L2", "L3", "L13", "N1", "N2")
async def test_one_hundred_registrations_leave_no_pi_in_clear(
    platform: Platform,
    clock: FixedClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = await make_admin(platform)
    admin_token = await login_token(platform, admin.login)
    desk = bearer(
        await make_member_with_role(platform, clock, admin, admin_token, "desk", "front_desk")
    )
    guests = people(COUNT)
    subject_ids = []
    with fake_ctid(clock) as ctid:
        app = create_app(platform)
        app.state.identity_provider = ctid.provider
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://anju.test") as client:
            for guest in guests:
                ctid.knows(guest)
                body = {
                    "document_type": guest.document_type,
                    "document_number": guest.document_number,
                    "name": guest.name,
                    "phone": guest.phone,
                    "email": guest.email,
                    "address": guest.address,
                    "method": "ctid",
                    "subject_id": await consenting_subject(platform, admin.org_id),
                }
                r = await client.post("/api/v1/people", json=body, headers=desk)
                assert r.status_code == 201, r.text
                subject_ids.append(r.json()["subject_id"])
                r = await client.get(f"/api/v1/people/{r.json()['person_id']}", headers=desk)
                assert r.status_code == 200
            # A duplicate and a bad check digit are refused (and logged as such).
            r = await client.post("/api/v1/people", json=body, headers=desk)
            assert r.status_code == 409
            bad = {**body, "document_number": body["document_number"][:17] + "Z"}
            assert (await client.post("/api/v1/people", json=bad, headers=desk)).status_code == 422

    values = sorted(
        {
            v
            for g in guests
            for v in (g.name, g.document_number, g.phone, g.email, g.address)
            if v is not None
        }
    )
    assert len(values) == 5 * COUNT  # every value distinct, none skipped
    url = platform.settings.resolved_database_url

    # The scanner does see what is stored in clear: the opaque subject ids are there.
    assert scan_platform_storage(url, subject_ids[:3], tmp_path)

    hits = scan_platform_storage(url, values, tmp_path)
    assert hits == [], "\n".join(str(h) for h in hits[:20])

    out, err = capfd.readouterr()
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "caplog.txt").write_text(caplog.text, encoding="utf-8")
    (logs / "stdout.txt").write_text(out + err, encoding="utf-8")
    assert caplog.text  # something was logged (requests), and it holds no PI
    hits = scan_logs([logs, platform.settings.data_dir], values)
    assert hits == [], "\n".join(str(h) for h in hits[:20])
