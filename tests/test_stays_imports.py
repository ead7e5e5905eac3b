"""Bookings from booking systems on both backends: signed webhooks (HMAC-SM3 over timestamp and
body, 5-minute window, replayed event ids refused, create / modify / cancel idempotent by the
channel's reference) and iCal feeds polled from a fake booking site on loopback (create, move,
cancel, robust parsing, size limit)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.stays import ical
from anju.stays.imports import MAX_FEED_BYTES, ImportService
from anju.stays.models import Booking
from anju.stays.rules import LOCAL_ZONE, FeedError
from anju.stays.tasks import poll_feed
from anju.webhooks.signing import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from tests.support.http import api_client, code_of, front_desk_headers
from tests.support.stays import CLERK, FakeOta, StaysWorld, stays_world, vcalendar, vevent

pytestmark = pytest.mark.req("L1", "L4")


@pytest.fixture
async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> StaysWorld:
    return await stays_world(platform, clock, tmp_path)


def loopback(platform: Platform) -> Platform:
    """The platform with loopback feed URLs allowed (the fake booking site)."""
    settings = platform.settings.model_copy(update={"webhook_allow_private": True})
    return Platform(settings=settings, db=platform.db, keys=platform.keys, clock=platform.clock)


def event(kind: str, room: str, ref: str, start: str, end: str, **more: Any) -> bytes:
    booking = {"external_ref": ref, "room_id": room, "starts_at": start, "ends_at": end, **more}
    return json.dumps({"type": kind, "booking": booking}).encode()


def signed(secret: str, body: bytes, event_id: str, stamp: int) -> dict[str, str]:
    return {
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: signature(secret, stamp, body),
        "Content-Type": "application/json",
    }


async def bookings(platform: Platform, world: StaysWorld) -> list[Booking]:
    async with platform.db.transaction() as session:
        return list(await ImportService(platform, session).search(world.org))


async def test_signed_webhooks_create_modify_cancel_and_refuse_replays(
    platform: Platform, clock: FixedClock, world: StaysWorld
) -> None:
    async with api_client(platform) as client:
        desk = await front_desk_headers(platform, clock, world.access.a.admin, "desk-ota")
        rotated = await client.post("/api/v1/booking-channels/ota/secret", headers=desk)
        assert rotated.status_code == 200, rotated.text
        secret = rotated.json()["secret"]
        url = f"/api/v1/booking-webhooks/{world.org}/ota"
        now = int(clock.now().timestamp())

        async def send(body: bytes, event_id: str, **kw: Any) -> httpx.Response:
            headers = signed(kw.get("secret", secret), body, event_id, kw.get("stamp", now))
            return await client.post(kw.get("url", url), content=body, headers=headers)

        created = event(
            "booking.created", world.room, "OTA-1", "2026-01-02T14:00:00+08:00",
            "2026-01-04T12:00:00+08:00", headcount=2,
            contact={"name": "张三", "phone": "13812345678"},
        )  # fmt: skip
        first = await send(created, "evt-1")
        assert first.status_code == 200, first.text
        assert first.json()["outcome"] == "created"
        # The same event id again is a replay; the same content under a new id changes nothing.
        replay = await send(created, "evt-1")
        assert (replay.status_code, code_of(replay)) == (409, "booking_webhook_replayed")
        again = await send(created, "evt-1b")
        assert again.json()["outcome"] == "unchanged"
        # Bad signature, wrong secret, stale or future timestamp, unknown org: all 401.
        tampered = created.replace(b"OTA-1", b"OTA-9")
        bad = [
            await client.post(url, content=tampered, headers=signed(secret, created, "e2", now)),
            await send(created, "e3", secret="whsec_wrong"),
            await send(created, "e4", stamp=now - 301),
            await send(created, "e5", stamp=now + 301),
            await send(created, "e6", url="/api/v1/booking-webhooks/nobody/ota"),
            await send(created, "e7", url=f"/api/v1/booking-webhooks/{world.org}/direct"),
        ]
        assert [(r.status_code, code_of(r)) for r in bad] == [
            (401, "booking_webhook_signature_invalid")
        ] * 6
        moved = event(
            "booking.modified", world.room, "OTA-1", "2026-01-03T06:00:00Z", "2026-01-05T04:00:00Z"
        )
        assert (await send(moved, "evt-2")).json()["outcome"] == "modified"
        (booking,) = await bookings(platform, world)
        assert booking.starts_at == datetime(2026, 1, 3, 6, tzinfo=UTC)
        assert (booking.channel, booking.external_ref, booking.headcount) == ("ota", "OTA-1", 1)
        listed = await client.get(f"/api/v1/bookings/{booking.id}", headers=desk)
        assert listed.json()["contact"] == {"name": "张*", "phone": "138****5678"}
        assert listed.json()["starts_local"] == "2026-01-03T14:00:00+08:00"
        assert b"13812345678" not in (booking.contact_phone.blob if booking.contact_phone else b"")
        cancelled = event("booking.cancelled", "", "OTA-1", "", "")
        assert (await send(cancelled, "evt-3")).json()["outcome"] == "cancelled"
        assert (await send(cancelled, "evt-4")).json()["outcome"] == "unchanged"
        (booking,) = await bookings(platform, world)
        assert booking.status == "cancelled"
        # Malformed but correctly signed: 422, and the event id stays unused (nothing written).
        broken = b'{"type": "booking.created", "booking": {"room_id": "x"}}'
        assert (await send(broken, "evt-5")).status_code == 422
        huge = event("booking.created", world.room, "OTA-3", "2026-01-06T14:00:00+08:00",
                     "2026-01-07T12:00:00+08:00", padding="x" * 70_000)  # fmt: skip
        assert (await send(huge, "evt-6")).status_code in (401, 413, 422)
        fixed = event("booking.created", world.room, "OTA-2", "2026-01-06T14:00:00+08:00",
                      "2026-01-07T12:00:00+08:00")  # fmt: skip
        assert (await send(fixed, "evt-5")).json()["outcome"] == "created"


async def test_rotating_the_secret_needs_stays_manage(
    platform: Platform, clock: FixedClock, world: StaysWorld
) -> None:
    async with api_client(platform) as client:
        anonymous = await client.post("/api/v1/booking-channels/ota/secret")
        assert anonymous.status_code == 401
        from tests.support.http import signed_in

        admin = await signed_in(client, clock, world.access.a.admin)
        refused = await client.post("/api/v1/booking-channels/ota/secret", headers=admin)
        assert refused.status_code == 403


def test_ical_reader_handles_folding_zones_dates_and_junk() -> None:
    text = vcalendar(
        vevent("a@ota", "DTSTART:20260110T060000Z", "DTEND:20260112T040000Z"),
        vevent("b@ota", "DTSTART;VALUE=DATE:20260115", "DTEND;VALUE=DATE:20260117"),
        vevent(
            "c@ota",
            'DTSTART;TZID="Europe/Paris":20260120T150000',
            "DTEND;TZID=Europe/Paris:20260121T110000",
            status="CANCELLED",
        ),
        vevent("", "DTSTART:20260110T060000Z", "DTEND:20260112T040000Z"),  # no UID: skipped
        vevent("d@ota", "DTSTART:garbage", "DTEND:20260112T040000Z"),  # skipped
        vevent("e@ota", "DTSTART:20260112T040000Z", "DTEND:20260110T060000Z"),  # ends first
    ).decode()
    folded = text.replace("UID:a@ota", "UID:a@\r\n ota")
    read = ical.read_feed(folded)
    assert [e.uid for e in read.events] == ["a@ota", "b@ota", "c@ota"]
    assert read.skipped == 3
    a, b, c = read.events
    assert a.starts_at == datetime(2026, 1, 10, 6, tzinfo=UTC)
    assert b.starts_at == datetime(2026, 1, 15, 14, tzinfo=LOCAL_ZONE)
    assert b.ends_at == datetime(2026, 1, 17, 12, tzinfo=LOCAL_ZONE)
    assert c.cancelled
    assert c.starts_at.astimezone(UTC) == datetime(2026, 1, 20, 14, tzinfo=UTC)
    for junk in ("", "hello", "BEGIN:VCALENDAR\r\n" + "X" * 20_000):
        with pytest.raises(ical.CalendarError):
            ical.read_feed(junk)


async def test_ical_feed_creates_moves_and_cancels_bookings(
    platform: Platform, world: StaysWorld
) -> None:
    platform = loopback(platform)
    start = "DTSTART:20260110T060000Z"
    async with FakeOta() as ota:
        async with platform.db.transaction() as session:
            feed = await ImportService(platform, session).add_feed(
                CLERK, world.org, world.room, ota.url
            )
        ota.calendar = vcalendar(
            vevent("a@ota", start, "DTEND:20260112T040000Z"),
            vevent("b@ota", "DTSTART;VALUE=DATE:20260115", "DTEND;VALUE=DATE:20260117"),
            vevent("clash@ota", "DTSTART:20260111T000000Z", "DTEND:20260113T000000Z"),
        )
        result = await poll_feed(platform, feed.id)
        assert (result.created, result.refused) == (2, 1)  # the clash overlaps "a"
        assert (await poll_feed(platform, feed.id)).unchanged == 2  # idempotent
        # "a" moves, "b" vanishes from the feed: moved and cancelled.
        ota.calendar = vcalendar(vevent("a@ota", start, "DTEND:20260111T040000Z"))
        result = await poll_feed(platform, feed.id)
        assert (result.modified, result.cancelled) == (1, 1)
        by_ref = {b.external_ref: b for b in await bookings(platform, world)}
        assert by_ref["a@ota"].ends_at == datetime(2026, 1, 11, 4, tzinfo=UTC)
        assert by_ref["b@ota"].status == "cancelled"
        assert "clash@ota" not in by_ref
        ota.calendar = vcalendar(vevent("a@ota", start, "DTEND:20260111T040000Z", "CANCELLED"))
        assert (await poll_feed(platform, feed.id)).cancelled == 1
        assert (await poll_feed(platform, feed.id)).cancelled == 0  # already cancelled
        # A broken, failing or oversized feed changes nothing and is recorded on the feed.
        for calendar, status, reason in (
            (b"<html>not a calendar</html>", 200, "not a VCALENDAR"),
            (vcalendar(), 500, "http_500"),
            (b"BEGIN:VCALENDAR\r\n" + b"X" * (MAX_FEED_BYTES + 1), 200, "too_large"),
        ):
            ota.calendar, ota.status = calendar, status
            with pytest.raises(FeedError) as failed:
                await poll_feed(platform, feed.id)
            assert failed.value.details["reason"] == reason
        async with platform.db.transaction() as session:
            kept = await ImportService(platform, session).repo.feed(feed.id)
            assert kept is not None
            assert kept.outcome == "error: too_large"
        assert [b.status for b in await bookings(platform, world)] == ["cancelled", "cancelled"]


async def test_feed_urls_are_guarded_against_internal_addresses(
    platform: Platform, world: StaysWorld
) -> None:
    from anju.webhooks.targets import TargetRefused

    for url in ("http://127.0.0.1:9/x.ics", "file:///etc/passwd", "http://localhost/x.ics"):
        with pytest.raises(TargetRefused):
            async with platform.db.transaction() as session:
                await ImportService(platform, session).add_feed(CLERK, world.org, world.room, url)


async def test_no_show_marks_only_overdue_bookings(
    platform: Platform, clock: FixedClock, world: StaysWorld
) -> None:
    from anju.stays.tasks import mark_no_shows
    from tests.support.stays import book, draft

    late = await book(platform, world, draft(clock.now(), hours=24))
    later = await book(platform, world, draft(clock.now() + timedelta(hours=30), hours=24))
    clock.advance(hours=23)
    assert await mark_no_shows(platform) == 0
    clock.advance(hours=2)
    assert await mark_no_shows(platform) == 1
    states = {b.id: b.status for b in await bookings(platform, world)}
    assert states == {late.id: "no_show", later.id: "booked"}
    # A no-show no longer holds the room.
    await book(platform, world, draft(clock.now(), hours=2))


async def test_feed_set_and_polled_over_http(
    platform: Platform, clock: FixedClock, world: StaysWorld
) -> None:
    platform = loopback(platform)
    async with FakeOta() as ota, api_client(platform) as client:
        desk = await front_desk_headers(platform, clock, world.access.a.admin, "desk-ical")
        body = {"room_id": world.room, "url": ota.url}
        feed = await client.put("/api/v1/booking-feeds", json=body, headers=desk)
        assert feed.status_code == 200, feed.text
        ota.calendar = vcalendar(
            vevent("z@ota", "DTSTART:20260110T060000Z", "DTEND:20260111T040000Z")
        )
        polled = await client.post(f"/api/v1/booking-feeds/{feed.json()['id']}/poll", headers=desk)
        assert polled.status_code == 200, polled.text
        assert json.loads(polled.json()["outcome"])["created"] == 1
        ota.status = 404
        failed = await client.post(f"/api/v1/booking-feeds/{feed.json()['id']}/poll", headers=desk)
        assert (failed.status_code, code_of(failed)) == (409, "ical_feed_error")
        other = await front_desk_headers(platform, clock, world.access.b.admin, "desk-ical-b")
        hidden = await client.post(f"/api/v1/booking-feeds/{feed.json()['id']}/poll", headers=other)
        assert hidden.status_code == 404
