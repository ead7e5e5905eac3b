"""The gateway hook: signed lock records verified with the registry key, used exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from anju.alarms.models import Alarm
from anju.devices.models import DeviceOperation
from anju.gateway import records as gateway_records
from anju.gateway.models import DeviceEvent
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.unlocks.models import UnlockRecord
from tests.support.records import Feed, door, now_ms, signed, unlock_rec
from tests.support.registry import audit_entries


async def count(platform: Platform, model: Any, *where: Any) -> int:
    async with platform.db.transaction() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(model).where(*where))
            ).scalar_one()
        )


@pytest.mark.req("L13", "R9")
async def test_signed_unlock_is_stored_once_at_its_door(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    d = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    feed = Feed(platform)
    data = signed(d.lock, unlock_rec(d.lock, now_ms(clock)))
    event_id = await feed.send(d.lock.device_id, "access.unlock", data)
    await feed.send(d.lock.device_id, "access.unlock", data, event_id=event_id)  # resent
    await feed.stop()
    async with platform.db.transaction() as session:
        rows = (await session.execute(select(UnlockRecord))).scalars().all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.org_id, row.place_kind, row.place_ref) == (d.org_id, "room", "A-301")
    assert (row.subject, row.credential_id, row.method, row.result) == (
        "tenant-0042",
        "cred-1",
        "passcode",
        "granted",
    )
    assert feed.counters.records_verified == 1
    assert feed.counters.events_duplicate == 1


@pytest.mark.req("L13", "R9")
async def test_forged_and_foreign_records_are_not_used(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    a = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    b = await door(platform, clock, tmp_path, login="sa-b", org="Org B", room="B-101")
    feed = Feed(platform)
    # B's lock signs a record naming A's lock (a forgery for A), and A relays B's own record.
    forged = signed(b.lock, unlock_rec(a.lock, now_ms(clock)))
    foreign = signed(b.lock, unlock_rec(b.lock, now_ms(clock)))
    tampered = signed(a.lock, unlock_rec(a.lock, now_ms(clock)))
    tampered["rec"]["result"] = "denied"
    for data in (forged, foreign, tampered):
        await feed.send(a.lock.device_id, "access.unlock", data)
    await feed.stop()
    assert await count(platform, UnlockRecord) == 0
    assert feed.counters.records_rejected == 3
    assert feed.counters.records_verified == 0
    # The raw events stay stored; each refusal is an operation record of the device + audited.
    assert await count(platform, DeviceEvent, DeviceEvent.device_id == a.lock.device_id) == 3
    ops = await count(
        platform,
        DeviceOperation,
        DeviceOperation.device_id == a.lock.device_id,
        DeviceOperation.operation == "record.refused",
    )
    assert ops == 3
    entries = await audit_entries(platform, "devices.security.bad_record")
    assert len(entries) == 3


@pytest.mark.req("L13")
async def test_a_failing_handler_loses_nothing(
    platform: Platform, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    original = gateway_records.RECORD_HANDLERS["access.unlock"]
    calls = {"n": 0}

    async def flaky(platform: Platform, session: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database hiccup")
        await original(platform, session, **kwargs)

    monkeypatch.setitem(gateway_records.RECORD_HANDLERS, "access.unlock", flaky)
    feed = Feed(platform)
    await feed.send(d.lock.device_id, "access.unlock", signed(d.lock, unlock_rec(d.lock, 1)))
    await feed.stop()
    assert calls["n"] == 2
    assert feed.counters.store_retries == 1
    assert await count(platform, UnlockRecord) == 1
    assert await count(platform, DeviceEvent) == 1


@pytest.mark.req("R2", "L17")
async def test_lock_alarms_are_raised_counted_and_cleared(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    d = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    feed = Feed(platform)
    rec = {"dev": d.lock.device_id, "at": now_ms(clock), "alarm": "tamper", "detail": None}
    await feed.send(d.lock.device_id, "alarm.raised", signed(d.lock, rec))
    await feed.send(d.lock.device_id, "alarm.raised", signed(d.lock, {**rec, "at": rec["at"] + 5}))
    async with platform.db.transaction() as session:
        alarm = (await session.execute(select(Alarm))).scalar_one()
    assert (alarm.kind, alarm.status, alarm.count, alarm.severity) == (
        "tamper",
        "active",
        2,
        "critical",
    )
    assert alarm.place_ref == "A-301"
    await feed.send(d.lock.device_id, "alarm.cleared", signed(d.lock, {**rec, "at": rec["at"] + 9}))
    await feed.stop()
    async with platform.db.transaction() as session:
        alarm = (await session.execute(select(Alarm))).scalar_one()
    assert alarm.status == "cleared"
    assert alarm.cleared_by == f"device:{d.lock.device_id}"


@pytest.mark.req("L17")
async def test_repeated_denials_at_a_lock_raise_a_platform_alarm(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    d = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    feed = Feed(platform)
    start = now_ms(clock)
    threshold = platform.settings.failure_alarm_threshold
    for i in range(threshold - 1):
        await feed.send(
            d.lock.device_id,
            "access.unlock",
            signed(d.lock, unlock_rec(d.lock, start + i * 1000, result="denied")),
        )
    assert await count(platform, Alarm) == 0
    # A denial long outside the window does not add up with the others.
    late = start + (platform.settings.failure_alarm_window_seconds + 60) * 1000
    await feed.send(
        d.lock.device_id, "access.unlock", signed(d.lock, unlock_rec(d.lock, late, result="denied"))
    )
    assert await count(platform, Alarm) == 0
    await feed.send(
        d.lock.device_id,
        "access.unlock",
        signed(d.lock, unlock_rec(d.lock, start + 30_000, result="denied")),
    )
    await feed.stop()
    async with platform.db.transaction() as session:
        alarm = (await session.execute(select(Alarm))).scalar_one()
    assert (alarm.kind, alarm.source, alarm.device_id) == (
        "repeated_failures",
        "platform",
        d.lock.device_id,
    )
    assert alarm.org_id == d.org_id
