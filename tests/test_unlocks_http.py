"""Unlock records over HTTP: search filters, masking, org isolation, audit, re-verification,
retention."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from anju.background import platform_sweepers
from anju.gateway.models import DeviceEvent
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.access import UNLOCK_EVENT as UNLOCK
from anju.retention.tasks import run_sweep
from anju.unlocks.models import UnlockRecord
from anju.unlocks.service import ms_to_datetime
from tests.support.accounts import login_token, make_member_with_role
from tests.support.http import api_client, bearer, code_of, signed_in
from tests.support.records import Door, Feed, door, now_ms, signed, unlock_rec
from tests.support.registry import audit_entries

#: The retention policy's default for unlock records (docs/retention.md).
UNLOCK_DAYS = 180


async def manager(platform: Platform, clock: FixedClock, d: Door, login: str) -> dict[str, str]:
    token = await login_token(platform, d.tenant.admin.login)
    member = await make_member_with_role(
        platform, clock, d.tenant.admin, token, login, "property_manager"
    )
    return bearer(member)


async def seed(platform: Platform, clock: FixedClock, d: Door) -> int:
    """Three attempts at lock times t, t + 1 min, t + 2 min; returns t (ms)."""
    feed = Feed(platform)
    t = now_ms(clock)
    await feed.send(d.lock.device_id, "access.unlock", signed(d.lock, unlock_rec(d.lock, t)))
    await feed.send(
        d.lock.device_id,
        "access.unlock",
        signed(d.lock, unlock_rec(d.lock, t + 60_000, result="denied")),
    )
    await feed.send(
        d.lock.device_id,
        "access.unlock",
        signed(
            d.lock, unlock_rec(d.lock, t + 120_000, method="card", cred="card-9", subject="guest-7")
        ),
    )
    await feed.stop()
    return t


@pytest.mark.req("L15", "L11", "R9")
async def test_search_filters_mask_and_audit(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    d = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    t = await seed(platform, clock, d)
    headers = await manager(platform, clock, d, "pm-a")
    async with api_client(platform) as client:

        async def search(**params: Any) -> list[dict[str, Any]]:
            response = await client.get("/api/v1/unlocks", params=params, headers=headers)
            assert response.status_code == 200, response.text
            rows: list[dict[str, Any]] = response.json()
            return rows

        everything = await search()
        assert [r["method"] for r in everything] == ["card", "passcode", "passcode"]  # newest first
        assert {r["subject"] for r in everything} == {"g*****7", "t*********2", None}
        assert [r["result"] for r in await search(result="denied")] == ["denied"]
        assert [r["credential_id"] for r in await search(method="card")] == ["card-9"]
        assert len(await search(place_kind="room", place_ref="A-301")) == 3
        assert await search(place_ref="A-302") == []
        assert [r["subject"] for r in await search(subject="guest-7")] == ["g*****7"]
        since = (ms_to_datetime(t) + timedelta(seconds=30)).isoformat()
        assert len(await search(since=since)) == 2
        assert len(await search(until=since)) == 1
        assert len(await search(limit=1, offset=1)) == 1
        response = await client.get("/api/v1/unlocks", params={"result": "maybe"}, headers=headers)
        assert response.status_code == 422
    entries = await audit_entries(platform, "unlocks.records.read")
    assert len(entries) == 9  # every accepted search (the refused one never reached the data)
    assert b"guest-7" not in b"".join(e.details.encode() for e in entries)


@pytest.mark.req("R9", "L15")
async def test_other_organisations_and_unauthorised_callers_see_nothing(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    a = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    b = await door(platform, clock, tmp_path, login="sa-b", org="Org B", room="B-101")
    await seed(platform, clock, a)
    b_headers = await manager(platform, clock, b, "pm-b")
    async with api_client(platform) as client:
        response = await client.get("/api/v1/unlocks", headers=b_headers)
        assert response.json() == []
        response = await client.get(
            "/api/v1/unlocks", params={"device_id": a.lock.device_id}, headers=b_headers
        )
        assert response.json() == []
        assert (await client.get("/api/v1/unlocks")).status_code == 401
        # A security administrator holds no records capability (PI-free role).
        sa = await signed_in(client, clock, a.tenant.admin)
        response = await client.get("/api/v1/unlocks", headers=sa)
        assert response.status_code == 403
        assert code_of(response) == "forbidden"
        a_headers = await manager(platform, clock, a, "pm-a")
        record_id = (await client.get("/api/v1/unlocks", headers=a_headers)).json()[0]["id"]
        response = await client.post(f"/api/v1/unlocks/{record_id}/verify", headers=b_headers)
        assert response.status_code == 404


@pytest.mark.req("L13", "R9")
async def test_stored_records_re_verify_and_tampering_is_detected(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    d = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    await seed(platform, clock, d)
    headers = await manager(platform, clock, d, "pm-a")
    async with api_client(platform) as client:
        rows = (await client.get("/api/v1/unlocks", headers=headers)).json()
        response = await client.post(f"/api/v1/unlocks/{rows[0]['id']}/verify", headers=headers)
        assert response.json()["valid"] is True
        async with platform.db.transaction() as session:
            row = await session.get(UnlockRecord, rows[1]["id"])
            assert row is not None
            row.record = row.record.replace('"denied"', '"granted"')
        response = await client.post(f"/api/v1/unlocks/{rows[1]['id']}/verify", headers=headers)
        assert response.json() == {
            "record_id": rows[1]["id"],
            "device_id": d.lock.device_id,
            "valid": False,
            "reason": "access_bad_signature",
        }


@pytest.mark.req("L15", "R9")
async def test_retention_sweep_deletes_old_records_and_is_audited(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    d = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    await seed(platform, clock, d)
    sweepers = platform_sweepers()
    assert (await run_sweep(platform, registry=sweepers)).counts["unlock_record"] == 0
    clock.advance(days=UNLOCK_DAYS - 1)
    fresh = Feed(platform)
    await fresh.send(
        d.lock.device_id, "access.unlock", signed(d.lock, unlock_rec(d.lock, now_ms(clock)))
    )
    await fresh.stop()
    clock.advance(days=2)
    # The three old records go, with the gateway's raw events they were made from.
    assert (await run_sweep(platform, registry=sweepers)).counts["unlock_record"] == 6
    async with platform.db.transaction() as session:
        left = (await session.execute(select(func.count()).select_from(UnlockRecord))).scalar_one()
        raw = (
            await session.execute(
                select(func.count()).select_from(DeviceEvent).where(DeviceEvent.kind == UNLOCK)
            )
        ).scalar_one()
    assert (left, raw) == (1, 1)
    entries = await audit_entries(platform, "retention.swept")
    swept = [e for e in entries if e.target == "retention:unlock_record"]
    assert len(swept) == 1
    assert '"removed":6' in swept[0].details.replace(" ", "")
    assert '"days":180' in swept[0].details.replace(" ", "")
