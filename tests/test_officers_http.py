"""Officer queries: scoped by jurisdiction, each with a legal basis, masked by default, recorded
(append-only table + audit) and visible to auditors and to the person concerned."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from anju.audit.models import AuditEntry
from anju.kit.clock import FixedClock
from anju.officers.models import OfficerQuery
from anju.platform import Platform
from anju.unlocks.service import ms_to_datetime
from tests.support.accounts import (
    Admin,
    login_token,
    make_admin,
    make_member_with_role,
)
from tests.support.housing import (
    Housing,
    Registered,
    access_link,
    housing,
    member_with_id,
    register,
    room_with_lock,
    unlocks,
)
from tests.support.http import api_client, bearer, code_of, signed_in
from tests.support.people import people
from tests.support.records import now_ms

BASIS = {
    "type": "criminal_investigation",
    "case_number": "京公(朝)刑立字〔2026〕1234号",
    "reason": "涉嫌盗窃案，核查嫌疑人入住与开门记录",
}
INSPECTION = {**BASIS, "type": "housing_inspection", "case_number": "ZJ-2026-0007"}


@dataclass
class World:
    a: Housing  # region 110105 (inside the officer's 1101)
    b: Housing  # region 310104 (outside)
    guest_a: Registered
    guest_b: Registered  # the same document, registered in B too
    document: str
    t_ms: int
    police: Admin
    officer_id: str
    officer: dict[str, str]
    auditor: dict[str, str]


async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> World:
    a = await housing(platform, clock, tmp_path, login="sa-a", org="Hotel A", region="110105")
    b = await housing(platform, clock, tmp_path, login="sa-b", org="Hotel B", region="310104")
    guest = people(1)[0]
    guest_a = await register(platform, a.org_id, guest)
    guest_b = await register(platform, b.org_id, guest)
    t = now_ms(clock)
    await unlocks(a, platform, (t, guest_a.subject_id), (t + 60_000, "psn_someone_else_entirely"))
    await unlocks(b, platform, (t, guest_b.subject_id))
    police = await make_admin(platform, login="sa-police", org="Chaoyang Police")
    officer_id, officer = await member_with_id(platform, clock, police, "officer-1", "officer")
    police_token = await login_token(platform, police.login)
    auditor = await make_member_with_role(platform, clock, police, police_token, "aud", "auditor")
    return World(
        a, b, guest_a, guest_b, guest.document_number, t, police, officer_id, officer,
        bearer(auditor),
    )  # fmt: skip


async def set_jurisdiction(
    client: httpx.AsyncClient, clock: FixedClock, w: World, prefixes: list[str]
) -> httpx.Response:
    headers = await signed_in(client, clock, w.police)
    return await client.put(
        f"/api/v1/officer/jurisdictions/{w.officer_id}",
        json={"region_prefixes": prefixes},
        headers=headers,
    )


def person_query(w: World, basis: dict[str, str] = BASIS, **extra: Any) -> dict[str, Any]:
    return {"basis": basis, "document_number": w.document, **extra}


def lock_query(w: World, h: Housing, basis: dict[str, str] = BASIS, **extra: Any) -> dict[str, Any]:
    since = ms_to_datetime(w.t_ms) - timedelta(hours=1)
    return {
        "basis": basis,
        "device_id": h.lock_id,
        "since": since.isoformat(),
        "until": (since + timedelta(days=1)).isoformat(),
        **extra,
    }


async def recorded(platform: Platform) -> list[OfficerQuery]:
    async with platform.db.transaction() as session:
        return list(
            (await session.execute(select(OfficerQuery).order_by(OfficerQuery.at))).scalars()
        )


@pytest.mark.req("R14", "L7", "L11")
async def test_person_query_sees_only_the_jurisdiction_masked_and_is_recorded(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    async with api_client(platform) as client:
        r = await set_jurisdiction(client, clock, w, ["1101"])
        assert (r.status_code, r.json()["region_prefixes"]) == (200, ["1101"])
        r = await client.post(
            "/api/v1/officer/queries/person", json=person_query(w), headers=w.officer
        )
        assert r.status_code == 200, r.text
        answer = r.json()
    # Only Hotel A (110105): the registration in Shanghai is neither returned nor hinted at.
    assert [p["org_id"] for p in answer["people"]] == [w.a.org_id]
    person = answer["people"][0]
    assert "clear" not in person
    assert w.document not in r.text
    assert person["masked"]["document_number"].count("*") >= 8
    assert [u["device_id"] for u in answer["unlocks"]] == [w.a.lock_id]
    assert answer["unlocks"][0]["subject"] != w.guest_a.subject_id  # masked pseudonym
    assert (answer["result_count"], answer["unmasked"]) == (2, False)
    rows = await recorded(platform)
    assert len(rows) == 1
    row = rows[0]
    assert (row.kind, row.basis_type, row.outcome, row.result_count) == (
        "person", "criminal_investigation", "answered", 2,
    )  # fmt: skip
    assert json.loads(row.subject_ids) == [w.guest_a.subject_id]
    assert (row.case_number, row.officer) == (BASIS["case_number"], f"account:{w.officer_id}")
    assert w.document not in row.criteria  # the document number itself is never stored
    async with platform.db.transaction() as session:
        entries = (await session.execute(select(AuditEntry).where(
            AuditEntry.action.in_(["officers.query", "officers.query_subject"])
        ))).scalars().all()  # fmt: skip
    assert sorted((e.action, e.target) for e in entries) == [
        ("officers.query", f"officer_query:{row.id}"),
        ("officers.query_subject", f"subject:{w.guest_a.subject_id}"),
    ]
    assert all(
        w.document not in e.details and BASIS["case_number"] not in e.details for e in entries
    )


@pytest.mark.req("R14", "L11")
async def test_unmasking_only_with_a_basis_that_allows_it(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    async with api_client(platform) as client:
        await set_jurisdiction(client, clock, w, ["110105"])
        r = await client.post(
            "/api/v1/officer/queries/person",
            json=person_query(w, INSPECTION, unmask=True),
            headers=w.officer,
        )
        assert (r.status_code, code_of(r)) == (403, "unmask_not_allowed")
        assert w.document not in r.text
        r = await client.post(
            "/api/v1/officer/queries/person", json=person_query(w, unmask=True), headers=w.officer
        )
        assert r.status_code == 200, r.text
    clear = r.json()["people"][0]["clear"]
    assert clear["document_number"] == w.document
    assert r.json()["unlocks"][0]["subject"] == w.guest_a.subject_id
    refused, answered = await recorded(platform)
    assert (refused.outcome, refused.refusal, refused.result_count) == (
        "refused", "unmask_not_allowed", 0,
    )  # fmt: skip
    assert (answered.outcome, answered.unmask) == ("answered", True)
    async with platform.db.transaction() as session:
        decrypted = (await session.execute(select(AuditEntry).where(
            AuditEntry.action == "pi.decrypted", AuditEntry.actor == f"account:{w.officer_id}"
        ))).scalars().all()  # fmt: skip
    assert len(decrypted) == 2
    assert all('"purpose":"lawful_request"' in e.details for e in decrypted)


@pytest.mark.req("R14", "R11")
async def test_lock_query_inside_answers_and_outside_is_refused_and_recorded(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    async with api_client(platform) as client:
        await set_jurisdiction(client, clock, w, ["1101"])
        r = await client.post(
            "/api/v1/officer/queries/lock", json=lock_query(w, w.a, INSPECTION), headers=w.officer
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["unlocks"]) == 2
        for device_id in (w.b.lock_id, "f" * 32):  # another region's lock, and no lock at all
            body = {**lock_query(w, w.a), "device_id": device_id}
            r = await client.post("/api/v1/officer/queries/lock", json=body, headers=w.officer)
            assert (r.status_code, code_of(r)) == (403, "outside_jurisdiction")
        # A window outside the records' time answers with nothing.
        late = lock_query(w, w.a)
        late["since"], late["until"] = (
            late["until"],
            (ms_to_datetime(w.t_ms) + timedelta(days=3)).isoformat(),
        )
        r = await client.post("/api/v1/officer/queries/lock", json=late, headers=w.officer)
        assert (r.status_code, r.json()["unlocks"]) == (200, [])
    rows = await recorded(platform)
    assert [(q.kind, q.outcome, q.refusal) for q in rows] == [
        ("lock", "answered", None),
        ("lock", "refused", "outside_jurisdiction"),
        ("lock", "refused", "outside_jurisdiction"),
        ("lock", "answered", None),
    ]
    assert sorted(json.loads(rows[0].subject_ids)) == sorted(
        [w.guest_a.subject_id, "psn_someone_else_entirely"]
    )


@pytest.mark.req("R14", "R11")
async def test_room_query_covers_the_locks_bound_to_the_room(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    room_a = await room_with_lock(platform, w.a)
    room_b = await room_with_lock(platform, w.b)
    async with api_client(platform) as client:
        await set_jurisdiction(client, clock, w, ["1101"])
        by_room = {k: v for k, v in lock_query(w, w.a).items() if k != "device_id"}
        r = await client.post(
            "/api/v1/officer/queries/lock", json={**by_room, "room_id": room_a}, headers=w.officer
        )
        assert r.status_code == 200, r.text
        assert {u["device_id"] for u in r.json()["unlocks"]} == {w.a.lock_id}
        assert len(r.json()["unlocks"]) == 2
        r = await client.post(
            "/api/v1/officer/queries/lock", json={**by_room, "room_id": room_b}, headers=w.officer
        )
        assert (r.status_code, code_of(r)) == (403, "outside_jurisdiction")
        for body in (by_room, {**lock_query(w, w.a), "room_id": room_a}):  # neither, both
            r = await client.post("/api/v1/officer/queries/lock", json=body, headers=w.officer)
            assert (r.status_code, code_of(r)) == (422, "invalid_input")
    rows = await recorded(platform)
    assert [(json.loads(q.criteria).get("room_id"), q.outcome) for q in rows] == [
        (room_a, "answered"),
        (room_b, "refused"),
    ]


@pytest.mark.req("R14", "L7")
async def test_without_jurisdiction_nothing_is_seen(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    async with api_client(platform) as client:
        r = await client.post(
            "/api/v1/officer/queries/person", json=person_query(w), headers=w.officer
        )
        assert (r.status_code, r.json()["people"], r.json()["unlocks"]) == (200, [], [])
        r = await client.post(
            "/api/v1/officer/queries/lock", json=lock_query(w, w.a), headers=w.officer
        )
        assert (r.status_code, code_of(r)) == (403, "outside_jurisdiction")


@pytest.mark.req("R14")
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "curiosity"}, "basis.type"),
        ({"case_number": "'; DROP TABLE officer_queries; --"}, "basis.case_number"),
        ({"case_number": "<script>alert(1)</script>"}, "basis.case_number"),
        ({"reason": "查一下"}, "basis.reason"),
        ({"reason": "涉嫌盗窃案\x00核查嫌疑人入住记录"}, "basis.reason"),
    ],
)
async def test_malformed_basis_is_refused_before_anything_is_read(
    platform: Platform, clock: FixedClock, tmp_path: Path, change: dict[str, str], field: str
) -> None:
    w = await world(platform, clock, tmp_path)
    async with api_client(platform) as client:
        await set_jurisdiction(client, clock, w, ["1101"])
        body = person_query(w, {**BASIS, **change})
        r = await client.post("/api/v1/officer/queries/person", json=body, headers=w.officer)
        assert (r.status_code, code_of(r)) == (422, "invalid_input")
        assert r.json()["error"]["details"]["field"] == field
        long_window = lock_query(w, w.a)
        long_window["until"] = (ms_to_datetime(w.t_ms) + timedelta(days=40)).isoformat()
        r = await client.post("/api/v1/officer/queries/lock", json=long_window, headers=w.officer)
        assert (r.status_code, code_of(r)) == (422, "invalid_input")
        r = await client.post(
            "/api/v1/officer/queries/person",
            json=person_query(w, document_number="1" * 65),
            headers=w.officer,
        )
        assert r.status_code == 422
    assert await recorded(platform) == []


@pytest.mark.req("R14", "L7", "L11")
async def test_auditors_and_the_person_see_the_queries_others_cannot_query(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    a_token = await login_token(platform, w.a.door.tenant.admin.login)
    desk = bearer(await make_member_with_role(
        platform, clock, w.a.door.tenant.admin, a_token, "desk-a", "front_desk"
    ))  # fmt: skip
    async with api_client(platform) as client:
        await set_jurisdiction(client, clock, w, ["1101"])
        r = await client.post(
            "/api/v1/officer/queries/person", json=person_query(w), headers=w.officer
        )
        assert r.status_code == 200
        # Not an officer: refused, and the refusal is audited.
        r = await client.post("/api/v1/officer/queries/person", json=person_query(w), headers=desk)
        assert (r.status_code, code_of(r)) == (403, "forbidden")
        r = await client.get("/api/v1/officer-queries", headers=desk)
        assert (r.status_code, code_of(r)) == (403, "forbidden")
        r = await client.get("/api/v1/officer-queries", headers=w.officer)
        assert r.status_code == 403
        r = await client.get("/api/v1/officer-queries", headers=w.auditor)
        assert r.status_code == 200
        [seen] = r.json()
        assert (seen["basis_type"], seen["case_number"], seen["subject_ids"]) == (
            "criminal_investigation", BASIS["case_number"], [w.guest_a.subject_id],
        )  # fmt: skip
        # The person, through their access link: basis type and time, not the case number.
        link = bearer(await access_link(platform, w.a.org_id, w.guest_a.person_id))
        r = await client.get("/api/v1/people/self/access-trail", headers=link)
        assert r.status_code == 200
        [entry] = [e for e in r.json()["entries"] if e["action"] == "officers.query_subject"]
        assert (entry["basis"], entry["purpose"], entry["actor"]) == (
            "criminal_investigation", "lawful_request", f"account:{w.officer_id}",
        )  # fmt: skip
        assert BASIS["case_number"] not in r.text
        assert BASIS["reason"] not in r.text
        r = await client.get("/api/v1/people/self", headers=link)
        assert [q["basis"] for q in r.json()["officer_queries"]] == ["criminal_investigation"]
        # The guest's registration in Shanghai was never touched: nothing in its trail.
        link_b = bearer(await access_link(platform, w.b.org_id, w.guest_b.person_id))
        r = await client.get("/api/v1/people/self/access-trail", headers=link_b)
        assert not [e for e in r.json()["entries"] if e["action"].startswith("officers.")]
    async with platform.db.transaction() as session:
        denied = await session.scalar(select(func.count()).where(
            AuditEntry.action == "officers.query", AuditEntry.outcome == "denied"
        ))  # fmt: skip
    assert denied == 1


@pytest.mark.req("R14", "L7", "L11")
async def test_jurisdiction_is_managed_by_the_security_admin_only_and_audited(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    async with api_client(platform) as client:
        for bad in (["11x1"], ["1"], ["9901"], ["1101001"]):
            r = await set_jurisdiction(client, clock, w, bad)
            assert r.status_code == 422, bad
        r = await client.put(
            f"/api/v1/officer/jurisdictions/{w.officer_id}",
            json={"region_prefixes": ["1101"]},
            headers=w.officer,
        )
        assert (r.status_code, code_of(r)) == (403, "forbidden")
        # Another organisation's admin cannot touch this officer; a non-officer gets no area.
        headers_a = await signed_in(client, clock, w.a.door.tenant.admin)
        r = await client.put(
            f"/api/v1/officer/jurisdictions/{w.officer_id}",
            json={"region_prefixes": ["1101"]},
            headers=headers_a,
        )
        assert (r.status_code, code_of(r)) == (404, "not_found")
        r = await set_jurisdiction(client, clock, w, ["1101", "310104", "1101"])
        assert r.json()["region_prefixes"] == ["1101", "310104"]
        r = await client.get(f"/api/v1/officer/jurisdictions/{w.officer_id}", headers=w.officer)
        assert r.json()["region_prefixes"] == ["1101", "310104"]
        r = await client.post(
            "/api/v1/officer/queries/person", json=person_query(w), headers=w.officer
        )
        assert sorted(p["org_id"] for p in r.json()["people"]) == sorted([w.a.org_id, w.b.org_id])
    async with platform.db.transaction() as session:
        entries = (await session.execute(select(AuditEntry).where(
            AuditEntry.action == "officers.jurisdiction_set"
        ))).scalars().all()  # fmt: skip
    assert [json.loads(e.details)["after"] for e in entries] == ["1101,310104"]
