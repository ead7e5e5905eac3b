"""Bookings over HTTP on both backends: any UTC offset in, UTC stored, Asia/Shanghai shown;
overlaps refused on half-open intervals (also under concurrency); cancelled bookings free the
room; the lead guest's contact is sealed and shown masked; only stays.manage may write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from anju.errors import AnjuError
from anju.kit.clock import FixedClock
from anju.kit.crypto import SM2PrivateKey
from anju.platform import Platform
from anju.stays.rules import BookingOverlap
from tests.support.http import api_client, code_of, front_desk_headers, signed_in
from tests.support.stays import StaysWorld, book, draft, guest, stays_world

pytestmark = pytest.mark.req("L1", "R10")


@pytest.fixture
async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> StaysWorld:
    return await stays_world(platform, clock, tmp_path)


def booking(room: str, start: str, end: str, **more: object) -> dict[str, object]:
    return {"room_id": room, "starts_at": start, "ends_at": end, **more}


async def test_offsets_overlaps_and_masked_contact_over_http(
    platform: Platform, clock: FixedClock, world: StaysWorld
) -> None:
    async with api_client(platform) as client:
        desk = await front_desk_headers(platform, clock, world.access.a.admin, "desk-1")

        async def post(body: dict[str, object]) -> httpx.Response:
            return await client.post("/api/v1/bookings", json=body, headers=desk)

        # Midnight in Shanghai is 16:00 UTC the day before; the year boundary is crossed.
        first = await post(
            booking(
                world.room,
                "2026-01-01T00:30:00+08:00",
                "2026-01-02T12:00:00+08:00",
                headcount=2,
                contact={"name": "欧阳娜娜", "phone": "13912345678"},
            )
        )
        assert first.status_code == 201, first.text
        made = first.json()
        assert made["starts_at"] == "2025-12-31T16:30:00+00:00"
        assert made["starts_local"] == "2026-01-01T00:30:00+08:00"
        assert made["contact"] == {"name": "欧***", "phone": "139****5678"}
        # The same instant written with another offset overlaps.
        clash = await post(
            booking(world.room, "2026-01-01T05:00:00+12:00", "2026-01-01T06:00:00+12:00")
        )
        assert (clash.status_code, code_of(clash)) == (409, "booking_overlap")
        # Half-open: a stay starting the moment the first ends is fine (here in UTC).
        after = await post(booking(world.room, "2026-01-02T04:00:00Z", "2026-01-03T04:00:00Z"))
        assert after.status_code == 201, after.text
        # Naive times, reversed or too long periods, unknown rooms, unknown fields: refused.
        for body, code in (
            (booking(world.room, "2026-02-01T14:00:00", "2026-02-02T12:00:00"), 422),
            (booking(world.room, "2026-02-02T14:00:00Z", "2026-02-01T12:00:00Z"), 422),
            (booking(world.room, "2026-02-01T14:00:00Z", "2026-06-01T12:00:00Z"), 422),
            (
                {
                    **booking(world.room, "2026-02-01T14:00:00Z", "2026-02-02T12:00:00Z"),
                    "room_id": "no-such-room",
                },
                404,
            ),
            ({**booking(world.room, "2026-02-01T14:00:00Z", "2026-02-02T12:00:00Z"), "x": 1}, 422),
        ):
            assert (await post(body)).status_code == code
        # Cancelling frees the room; the contact is never in the database in clear.
        cancelled = await client.post(f"/api/v1/bookings/{made['id']}/cancel", headers=desk)
        assert cancelled.json()["status"] == "cancelled"
        again = await post(
            booking(world.room, "2026-01-01T01:00:00+08:00", "2026-01-01T10:00:00+08:00")
        )
        assert again.status_code == 201, again.text
        async with platform.db.transaction() as session:
            dump = (await session.execute(text("SELECT * FROM stays_bookings"))).all()
        assert "13912345678" not in repr(dump)
        assert "欧阳娜娜".encode() not in repr(dump).encode()
        listed = await client.get("/api/v1/bookings", headers=desk)
        assert [b["status"] for b in listed.json()] == ["cancelled", "booked", "booked"]


async def test_only_stays_manage_writes_and_other_orgs_see_nothing(
    platform: Platform, clock: FixedClock, world: StaysWorld
) -> None:
    made = await book(platform, world, draft(clock.now()))
    async with api_client(platform) as client:
        body = booking(world.room, "2026-03-01T14:00:00+08:00", "2026-03-02T12:00:00+08:00")
        assert (await client.post("/api/v1/bookings", json=body)).status_code == 401
        admin = await signed_in(client, clock, world.access.a.admin)  # security admin
        refused = await client.post("/api/v1/bookings", json=body, headers=admin)
        assert refused.status_code == 403
        other = await front_desk_headers(platform, clock, world.access.b.admin, "desk-b")
        hidden = await client.get(f"/api/v1/bookings/{made.id}", headers=other)
        assert (hidden.status_code, code_of(hidden)) == (404, "booking_not_found")
        checkout = await client.post(f"/api/v1/stays/{made.id}/check-out", headers=other)
        assert checkout.status_code == 404


async def test_concurrent_overlapping_bookings_one_wins(
    platform: Platform, clock: FixedClock, world: StaysWorld
) -> None:
    start = clock.now()
    results = await asyncio.gather(
        *(book(platform, world, draft(start, hours=10 + i)) for i in range(4)),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1
    assert all(isinstance(e, BookingOverlap) for e in lost), lost
    assert all(isinstance(e, AnjuError) for e in lost)


async def test_check_in_and_out_over_http_hands_keys_over_once(
    platform: Platform, clock: FixedClock, world: StaysWorld
) -> None:
    subject = await guest(platform, world, face="refused")
    made = await book(platform, world, draft(clock.now()))
    phone = SM2PrivateKey.generate()
    async with api_client(platform) as client:
        desk = await front_desk_headers(platform, clock, world.access.a.admin, "desk-2")
        body = {"guests": [{"subject_id": subject, "holder_key": phone.public_key.raw.hex()}]}
        bad = await client.post(
            f"/api/v1/stays/{made.id}/check-in",
            json={"guests": [{"subject_id": "x" * 65}]},
            headers=desk,
        )
        assert bad.status_code == 422
        response = await client.post(f"/api/v1/stays/{made.id}/check-in", json=body, headers=desk)
        assert response.status_code == 200, response.text
        (keys,) = response.json()["guests"]
        assert keys["passcode"].isdigit()
        assert set(keys["ekey_tokens"]) == {
            world.access.room.device_id,
            world.access.entrance.device_id,
        }
        assert keys["face_consented"] is False
        twice = await client.post(f"/api/v1/stays/{made.id}/check-in", json=body, headers=desk)
        assert (twice.status_code, code_of(twice)) == (409, "already_checked_in")
        listed = await client.get(f"/api/v1/stays/{made.id}/guests", headers=desk)
        assert "passcode" not in listed.json()[0]
        out = await client.post(f"/api/v1/stays/{made.id}/check-out", headers=desk)
        assert out.json()["status"] == "checked_out"
        assert out.json()["checked_out_at"] == clock.now().isoformat()
        late = await client.post(f"/api/v1/stays/{made.id}/check-out", headers=desk)
        assert (late.status_code, code_of(late)) == (409, "not_checked_in")
