"""Tenants' requests and staff activity: the person files through their access link, staff
move the request along its states, the text stays sealed, staff visits show the access used."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from anju.audit.models import AuditEntry
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.requests.models import TenantRequest, TenantRequestChange
from anju.unlocks.service import ms_to_datetime
from tests.support.housing import (
    Housing,
    Registered,
    access_link,
    housing,
    member_with_id,
    register,
    unlocks,
)
from tests.support.http import api_client, bearer, code_of
from tests.support.people import people
from tests.support.records import now_ms

HOSTILE = "卫生间水管漏水 <script>alert('x')</script> '; DROP TABLE tenant_requests; --"
STAFF_SUBJECT = "psn_staff_cleaner_0001"


@dataclass
class World:
    a: Housing
    b: Housing
    guest: Registered
    guest_b: Registered
    link: dict[str, str]
    manager_id: str
    manager: dict[str, str]
    cleaner_id: str
    landlord: dict[str, str]
    manager_b: dict[str, str]
    outsider_id: str


async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> World:
    a = await housing(platform, clock, tmp_path, login="sa-a", org="Apartments A", region="110105")
    b = await housing(platform, clock, tmp_path, login="sa-b", org="Apartments B", region="310104")
    guest_app, other_app = people(2)
    guest = await register(platform, a.org_id, guest_app)
    guest_b = await register(platform, b.org_id, other_app)
    admin_a, admin_b = a.door.tenant.admin, b.door.tenant.admin
    manager_id, manager = await member_with_id(platform, clock, admin_a, "pm-a", "property_manager")
    cleaner_id, _ = await member_with_id(platform, clock, admin_a, "clean-a", "front_desk")
    _, landlord = await member_with_id(platform, clock, admin_a, "owner-a", "landlord")
    outsider_id, manager_b = await member_with_id(
        platform, clock, admin_b, "pm-b", "property_manager"
    )
    link = bearer(await access_link(platform, a.org_id, guest.person_id))
    return World(
        a, b, guest, guest_b, link, manager_id, manager, cleaner_id, landlord, manager_b,
        outsider_id,
    )  # fmt: skip


@pytest.mark.req("R14", "R13", "L3", "L11")
async def test_request_lifecycle_from_the_person_to_closed(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    async with api_client(platform) as client:
        r = await client.post(
            "/api/v1/requests/self",
            json={"kind": "repair", "text": HOSTILE, "place_ref": "301"},
            headers=w.link,
        )
        assert r.status_code == 201, r.text
        request_id = r.json()["id"]
        assert (r.json()["status"], r.json()["created_by"]) == (
            "open", f"person:{w.guest.person_id}",
        )  # fmt: skip
        r = await client.get("/api/v1/requests", headers=w.manager)
        assert [(q["id"], q["text"]) for q in r.json()] == [(request_id, None)]
        r = await client.get(f"/api/v1/requests/{request_id}", headers=w.manager)
        assert r.json()["text"] == HOSTILE  # verbatim: stored sealed, never interpreted
        steps = [
            ({"status": "in_progress"}, 409),  # not assigned yet
            ({"status": "assigned"}, 422),  # assigning names someone
            ({"status": "assigned", "assignee_id": w.outsider_id}, 404),  # another org's
            ({"status": "assigned", "assignee_id": w.cleaner_id}, 200),
            ({"status": "in_progress"}, 200),
            ({"status": "closed"}, 409),  # not resolved yet
            ({"status": "resolved"}, 200),
            ({"status": "closed"}, 200),
            ({"status": "open"}, 409),  # closed is final
            ({"status": "done"}, 422),
        ]
        for body, expected in steps:
            r = await client.post(
                f"/api/v1/requests/{request_id}/status", json=body, headers=w.manager
            )
            assert r.status_code == expected, (body, r.text)
            if expected == 409:
                assert code_of(r) == "request_state_conflict"
        r = await client.get("/api/v1/requests/self", headers=w.link)
        [mine] = r.json()
        assert (mine["text"], mine["status"], mine["assignee_id"]) == (
            HOSTILE, "closed", w.cleaner_id,
        )  # fmt: skip
        assert [(c["from_status"], c["to_status"]) for c in mine["timeline"]] == [
            (None, "open"),
            ("open", "assigned"),
            ("assigned", "in_progress"),
            ("in_progress", "resolved"),
            ("resolved", "closed"),
        ]
    async with platform.db.transaction() as session:
        row = await session.get(TenantRequest, request_id)
        assert row is not None
        assert "水管".encode() not in row.body.blob
        assert b"DROP" not in row.body.blob
        target = f"subject:{w.guest.subject_id}"
        reads = (await session.execute(select(AuditEntry).where(
            AuditEntry.action == "pi.decrypted", AuditEntry.target == target
        ))).scalars().all()  # fmt: skip
    purposes = sorted(json.loads(e.details)["purpose"] for e in reads)
    assert purposes == ["service_request", "subject_access"]


@pytest.mark.req("R14", "L7")
async def test_bad_input_other_orgs_and_unauthorised_callers(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    async with api_client(platform) as client:
        bad = [
            ({"kind": "repair", "text": "漏" * 2001}, 413),
            ({"kind": "repair", "text": "   "}, 422),
            ({"kind": "repair", "text": "门锁\x07坏了"}, 422),
            ({"kind": "complaint", "text": "门锁坏了"}, 422),
            ({"kind": "repair", "text": "门锁坏了", "extra": 1}, 422),
            ({"kind": "repair", "text": "门锁坏了", "place_ref": "<b>301</b>"}, 422),
        ]
        for body, expected in bad:
            r = await client.post("/api/v1/requests/self", json=body, headers=w.link)
            assert r.status_code == expected, (body, r.text)
        ok = {"kind": "feedback", "text": "前台服务很好"}
        r = await client.post("/api/v1/requests/self", json=ok, headers=bearer("anjup_forged"))
        assert (r.status_code, code_of(r)) == (401, "unauthenticated")
        r = await client.post("/api/v1/requests/self", json=ok)
        assert r.status_code == 401
        # Staff of A may file for A's people only; B's staff see nothing of A.
        r = await client.post(
            "/api/v1/requests", json={**ok, "person_id": w.guest_b.person_id}, headers=w.manager
        )
        assert (r.status_code, code_of(r)) == (404, "not_found")
        r = await client.post(
            "/api/v1/requests", json={**ok, "person_id": w.guest.person_id}, headers=w.manager
        )
        assert (r.status_code, r.json()["created_by"]) == (201, f"account:{w.manager_id}")
        request_id = r.json()["id"]
        for headers in (w.manager_b,):
            r = await client.get(f"/api/v1/requests/{request_id}", headers=headers)
            assert (r.status_code, code_of(r)) == (404, "not_found")
            r = await client.post(
                f"/api/v1/requests/{request_id}/status", json={"status": "rejected"},
                headers=headers,
            )  # fmt: skip
            assert r.status_code == 404
            assert (await client.get("/api/v1/requests", headers=headers)).json() == []
        r = await client.get(f"/api/v1/requests/{request_id}", headers=w.landlord)
        assert (r.status_code, code_of(r)) == (403, "forbidden")
        r = await client.post(
            "/api/v1/requests", json={**ok, "person_id": w.guest.person_id}, headers=w.landlord
        )
        assert r.status_code == 403
    async with platform.db.transaction() as session:
        changes = (await session.execute(select(TenantRequestChange))).scalars().all()
        requests = (await session.execute(select(TenantRequest))).scalars().all()
    assert (len(requests), len(changes)) == (1, 1)  # nothing half-written by any refusal


@pytest.mark.req("R13", "R11")
async def test_staff_activity_links_the_access_used_in_its_window(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    t = now_ms(clock)
    minute = 60_000
    await unlocks(
        w.a, platform,
        (t, STAFF_SUBJECT),
        (t + 5 * minute, w.guest.subject_id),  # the guest, not the cleaner
        (t + 10 * minute, STAFF_SUBJECT),
        (t + 180 * minute, STAFF_SUBJECT),  # after the visit
    )  # fmt: skip
    start = ms_to_datetime(t) - timedelta(minutes=1)
    visit = {
        "account_id": w.cleaner_id,
        "access_subject": STAFF_SUBJECT,
        "purpose": "cleaning",
        "device_ids": [w.a.lock_id],
        "started_at": start.isoformat(),
    }
    async with api_client(platform) as client:
        r = await client.post("/api/v1/staff-activities", json=visit, headers=w.manager)
        assert r.status_code == 201, r.text
        activity_id = r.json()["id"]
        r = await client.post(
            f"/api/v1/staff-activities/{activity_id}/end",
            json={"ended_at": (start + timedelta(hours=1)).isoformat()},
            headers=w.manager,
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            f"/api/v1/staff-activities/{activity_id}/end",
            json={"ended_at": (start + timedelta(hours=2)).isoformat()},
            headers=w.manager,
        )
        assert r.status_code == 422  # ended once
        r = await client.get(f"/api/v1/staff-activities/{activity_id}", headers=w.manager)
        used = r.json()["access_used"]
        assert [u["at"] for u in used] == [
            ms_to_datetime(t).isoformat().replace("+00:00", "Z"),
            ms_to_datetime(t + 10 * minute).isoformat().replace("+00:00", "Z"),
        ]
        assert all(u["subject"] != STAFF_SUBJECT for u in used)  # masked without pi.read
        r = await client.get(f"/api/v1/staff-activities/{activity_id}", headers=w.manager_b)
        assert r.status_code == 404
        wrong = [
            ({"device_ids": [w.b.lock_id]}, 404),
            ({"account_id": w.outsider_id}, 404),
            ({"request_id": "0" * 32}, 404),
            ({"purpose": "party"}, 422),
            ({"access_subject": "psn staff; --"}, 422),
            ({"ended_at": (start - timedelta(minutes=1)).isoformat()}, 422),
            ({"ended_at": (start + timedelta(days=3)).isoformat()}, 422),
            ({"device_ids": []}, 422),
        ]
        for change, expected in wrong:
            r = await client.post(
                "/api/v1/staff-activities", json={**visit, **change}, headers=w.manager
            )
            assert r.status_code == expected, (change, r.text)
        r = await client.post("/api/v1/staff-activities", json=visit, headers=w.landlord)
        assert r.status_code == 403
        r = await client.get("/api/v1/staff-activities", headers=w.manager)
        assert [a["id"] for a in r.json()] == [activity_id]
