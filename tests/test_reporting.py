"""Regulator reporting (L6): minimised payload, sign then envelope (L3), outbox delivery to a
fake regulator on loopback through outages, replays and refusals."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from anju.alarms.models import Alarm
from anju.audit.models import AuditEntry
from anju.background import platform_sweepers
from anju.consent.gate import needs_consent
from anju.errors import IntegrityError, InvalidInput, NotFound
from anju.kit.clock import FixedClock
from anju.kit.crypto import SM2PrivateKey
from anju.platform import Platform
from anju.reporting.models import Report, ReportAttempt
from anju.reporting.rules import PROBE_CAP_SECONDS, probe_delay_seconds
from anju.reporting.service import PARKED_ALARM, ReportingService
from anju.reporting.tasks import ReportSender
from anju.reporting.wire import IDEMPOTENCY_HEADER, PATH, open_report, seal_report
from anju.retention.policies import default_policies
from anju.retention.tasks import run_sweep
from tests.support.people import people
from tests.support.reporting import (
    add_unlocks,
    fake_regulator,
    register_guest,
    send_all,
    sending_to,
)

ORG = "org-1"
CHECK_IN = datetime(2026, 1, 1, 11, 30, tzinfo=UTC)  # 19:30 in Shanghai


async def queue_check_in(platform: Platform, subject_id: str, stay_id: str = "stay-1") -> str:
    async with platform.db.transaction() as session:
        report = await ReportingService(platform, session).queue_check_in(
            org_id=ORG, stay_id=stay_id, subject_id=subject_id, room_id="room-301", at=CHECK_IN
        )
        return report.id


async def reports(platform: Platform) -> list[Report]:
    async with platform.db.transaction() as session:
        return list((await session.execute(select(Report).order_by(Report.id))).scalars())


@pytest.mark.req("L6", "L3", "L11")
async def test_check_in_payload_is_minimal_and_correct_and_the_outbox_holds_no_pi(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    guest = people(1)[0]
    subject = await register_guest(platform, ORG, guest)
    report_id = await queue_check_in(platform, subject)
    async with platform.db.transaction() as session:
        await ReportingService(platform, session).queue_check_out(
            org_id=ORG, stay_id="stay-1", subject_id=subject, room_id="room-301",
            at=datetime(2026, 1, 3, 13, 30, tzinfo=timezone(timedelta(hours=2))),  # a +02:00 client
        )  # fmt: skip
    # The outbox row refers to the guest; nothing of the guest is in it.
    (row, out_row) = sorted(await reports(platform), key=lambda r: r.kind)
    stored = json.dumps({c.name: str(getattr(row, c.name)) for c in Report.__table__.columns})
    for value in (guest.name, guest.document_number, guest.phone):
        assert value not in stored
    with fake_regulator(platform) as regulator:
        assert await send_all(sending_to(platform, regulator, tmp_path)) == 2
    got = regulator.received.reports[report_id]
    assert got == {
        "format": "anju-regulator-report/1",
        "report_id": report_id,
        "kind": "check_in",
        "site": {"org_id": ORG},
        "stay_id": "stay-1",
        "room": {"room_id": "room-301"},
        "at": "2026-01-01T19:30:00+08:00",
        "guest": {
            "subject_id": subject,
            "name": guest.name,
            "document_type": "resident_id",
            "document_number": guest.document_number,
        },
    }
    # Check-out refers to the guest by the pseudonym the check-in report introduced.
    out = regulator.received.reports[out_row.id]
    assert out["guest"] == {"subject_id": subject}
    assert out["at"] == "2026-01-03T19:30:00+08:00"
    # Each decryption at send time is audited with its purpose.
    async with platform.db.transaction() as session:
        entries = (
            (await session.execute(select(AuditEntry).where(AuditEntry.action == "pi.decrypted")))
            .scalars()
            .all()
        )
    purposes = [json.loads(e.details)["purpose"] for e in entries]
    assert purposes.count("regulator_report") == 2  # name and document number, once each
    # A legal obligation, not a consent purpose (L6): refusing consent does not stop it.
    assert not needs_consent("regulator_report")


@pytest.mark.req("L3", "L6")
async def test_envelope_opens_only_with_the_regulator_key_and_tampering_is_refused(
    platform: Platform,
) -> None:
    platform_key = SM2PrivateKey.generate()
    regulator = SM2PrivateKey.generate()
    payload = {"format": "anju-regulator-report/1", "report_id": "r-1", "kind": "check_out"}
    body = seal_report(payload, platform_key, regulator.public_key)
    assert open_report(body, regulator, platform_key.public_key) == payload
    assert b"check_out" not in body  # the payload is not readable on the wire
    with pytest.raises(IntegrityError):  # another recipient
        open_report(body, SM2PrivateKey.generate(), platform_key.public_key)
    with pytest.raises(IntegrityError):  # signed by someone else
        open_report(body, regulator, SM2PrivateKey.generate().public_key)
    envelope = json.loads(body)
    flipped = bytearray(envelope["ciphertext"].encode())
    flipped[10] = ord("A") if flipped[10] != ord("A") else ord("B")
    with pytest.raises(IntegrityError):  # altered ciphertext
        open_report(
            json.dumps({**envelope, "ciphertext": flipped.decode()}).encode(),
            regulator,
            platform_key.public_key,
        )
    with pytest.raises(IntegrityError):  # moved to another report id (AAD)
        open_report(
            json.dumps({**envelope, "report_id": "r-2"}).encode(),
            regulator,
            platform_key.public_key,
        )
    forged = seal_report(payload, SM2PrivateKey.generate(), regulator.public_key)
    with pytest.raises(IntegrityError):
        open_report(forged, regulator, platform_key.public_key)
    with pytest.raises(InvalidInput):
        open_report(b"not json", regulator, platform_key.public_key)


@pytest.mark.req("L6", "L1")
async def test_receiver_down_for_hours_then_up_gets_every_report_exactly_once(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    guests = people(3)
    subjects = [await register_guest(platform, ORG, g) for g in guests]
    ids = [await queue_check_in(platform, s, stay_id=f"stay-{i}") for i, s in enumerate(subjects)]
    with fake_regulator(platform) as regulator:
        sender = ReportSender(sending_to(platform, regulator, tmp_path))
        try:
            regulator.stop()  # down
            assert await sender.send_due() == 3  # the first pass tries them all
            for _ in range(6):  # hours of probing: one report per pass, held off between
                assert await sender.send_due() == 0  # the probe delay is not up yet
                clock.advance(seconds=600)  # past the probe delay and every back-off
                assert await sender.send_due() == 1
            regulator.fail_with = 503
            regulator.start()  # back at the same address, but failing at first
            clock.advance(seconds=PROBE_CAP_SECONDS)
            assert await sender.send_due() == 1  # the probe gets a 503: still down
            clock.advance(seconds=PROBE_CAP_SECONDS)
            regulator.fail_with = None
            assert await sender.send_due() == 1  # the probe gets through …
            clock.advance(seconds=600)
            assert await sender.send_due() == 2  # … and the rest follow in a full pass
            assert await sender.send_due() == 0  # nothing left
        finally:
            await sender.aclose()
    assert sorted(regulator.received.reports) == sorted(ids)
    assert regulator.received.duplicates == 0
    rows = await reports(platform)
    assert {r.status for r in rows} == {"delivered"}
    async with platform.db.transaction() as session:
        log = (await session.execute(select(ReportAttempt).order_by(ReportAttempt.id))).scalars()
        attempts = [(a.report_id, a.status_code, a.error, a.outcome) for a in log]
        decrypted = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "pi.decrypted"))
        ).scalars().all()  # fmt: skip
    # 3 in the first pass, 6 probes while down, a probe answered 503, a probe delivered, then
    # the other 2: every attempt is logged, and only those were built (name and document
    # decrypted: two audited decryptions each) — queued reports are not touched meanwhile.
    assert len(attempts) == 3 + 6 + 1 + 1 + 2
    assert len(decrypted) == 2 * len(attempts)
    assert sum(r.attempts for r in rows) == len(attempts)
    for report_id in ids:
        mine = [a[1:] for a in attempts if a[0] == report_id]
        assert [a[2] for a in mine] == ["retry"] * (len(mine) - 1) + ["delivered"]
        assert mine[-1][0] == 201
        assert all(a[0] in (None, 503) and a[1] for a in mine[:-1])  # refused or 503


@pytest.mark.req("L6")
async def test_a_replayed_or_resent_report_is_kept_once_by_the_regulator(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    subject = await register_guest(platform, ORG, people(1)[0])
    report_id = await queue_check_in(platform, subject)
    with fake_regulator(platform) as regulator:
        sender_platform = sending_to(platform, regulator, tmp_path)
        async with platform.db.transaction() as session:
            service = ReportingService(sender_platform, session)
            (report,) = await service.claim_due(10, lease_seconds=1)
            payload = await service.payload_of(report)
        signer = platform.keys.signer("regulator-report")
        first = seal_report(payload, signer, regulator.public_key)
        again = seal_report(payload, signer, regulator.public_key)  # a retry: fresh envelope
        assert first != again
        headers = {IDEMPOTENCY_HEADER: report_id}
        async with httpx.AsyncClient(trust_env=False) as client:
            answers = [
                (await client.post(regulator.url + PATH, content=body, headers=headers))
                for body in (first, first, again)
            ]
            wrong_key = await client.post(
                regulator.url + PATH, content=first, headers={IDEMPOTENCY_HEADER: "other"}
            )
        assert [a.status_code for a in answers] == [201, 200, 200]
        assert wrong_key.status_code == 400
        # The sender died before recording: the lease ends and it sends again; still once.
        clock.advance(seconds=2)
        assert await send_all(sender_platform) == 1
    assert list(regulator.received.reports) == [report_id]
    assert regulator.received.duplicates == 3
    assert [r.status for r in await reports(platform)] == ["delivered"]


@pytest.mark.req("L6", "L17")
async def test_a_report_the_regulator_refuses_is_parked_and_alarmed_not_retried(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    subject = await register_guest(platform, ORG, people(1)[0])
    report_id = await queue_check_in(platform, subject)
    with fake_regulator(platform) as regulator:
        regulator.platform_key = SM2PrivateKey.generate().public_key  # trusts another platform
        sender_platform = sending_to(platform, regulator, tmp_path)
        assert await send_all(sender_platform) == 1
        clock.advance(days=2)
        assert await send_all(sender_platform) == 0  # parked: never again by itself
        assert regulator.received.refused == ["integrity_check_failed"]
        (row,) = await reports(platform)
        assert (row.status, row.attempts, row.last_status_code) == ("parked", 1, 400)
        assert row.last_error == "integrity_check_failed"
        async with platform.db.transaction() as session:
            alarms = (
                (await session.execute(select(Alarm).where(Alarm.kind == PARKED_ALARM)))
                .scalars()
                .all()
            )
            assert [a.org_id for a in alarms] == [ORG]
            # Fixed (the regulator learns our key): an operator retries it.
            await ReportingService(platform, session).retry_parked(report_id, "account:ops")
        regulator.platform_key = platform.keys.signer("regulator-report").public_key
        assert await send_all(sender_platform) == 1
    assert list(regulator.received.reports) == [report_id]
    assert [r.status for r in await reports(platform)] == ["delivered"]


@pytest.mark.req("L6", "L10")
async def test_a_guest_deleted_before_sending_parks_the_report_without_decrypting(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    from anju.people.service import Actor, PeopleService

    subject = await register_guest(platform, ORG, people(1)[0])
    await queue_check_in(platform, subject)
    async with platform.db.transaction() as session:
        people_service = PeopleService(platform, session)
        row = await ReportingService(platform, session).repo.person_of(ORG, subject)
        assert row is not None
        await people_service.delete(Actor("account:op", ORG), row, "subject_request")
    with fake_regulator(platform) as regulator:
        assert await send_all(sending_to(platform, regulator, tmp_path)) == 0
        assert regulator.received.requests == 0
    (report,) = await reports(platform)
    assert (report.status, report.last_error) == ("parked", "report_payload_unavailable")


@pytest.mark.req("L6")
async def test_queueing_is_idempotent_checks_its_input_and_writes_nothing_on_refusal(
    platform: Platform,
) -> None:
    subject = await register_guest(platform, ORG, people(1)[0])
    first = await queue_check_in(platform, subject)
    assert await queue_check_in(platform, subject) == first  # the same check-in, one report
    async with platform.db.transaction() as session:
        service = ReportingService(platform, session)
        with pytest.raises(InvalidInput):
            await service.queue_check_in(
                org_id=ORG, stay_id="s-2", subject_id=subject, room_id="r",
                at=datetime(2026, 1, 1, 12, 0),  # naive: which zone?
            )  # fmt: skip
        with pytest.raises(NotFound):  # another organisation's guest
            await service.queue_check_in(
                org_id="org-2", stay_id="s-2", subject_id=subject, room_id="r", at=CHECK_IN
            )
        with pytest.raises(InvalidInput):
            await service.queue_unlocks(org_id=ORG, since=CHECK_IN, until=CHECK_IN)
    assert [r.id for r in await reports(platform)] == [first]


@pytest.mark.req("L6", "L13")
async def test_granted_unlocks_are_reported_once_with_lock_times_in_shanghai(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    base = datetime(2026, 1, 1, 16, 0, tzinfo=UTC)  # midnight in Shanghai
    granted = await add_unlocks(platform, ORG, [base + timedelta(minutes=m) for m in (1, 2, 3)])
    await add_unlocks(platform, ORG, [base + timedelta(minutes=4)], result="denied")
    await add_unlocks(platform, "org-2", [base + timedelta(minutes=5)])
    async with platform.db.transaction() as session:
        service = ReportingService(platform, session)
        assert await service.queue_unlocks(org_id=ORG, since=base, until=base + timedelta(hours=1))
        # An overlapping window does not report them again.
        assert await service.queue_unlocks(
            org_id=ORG, since=base - timedelta(hours=1), until=base + timedelta(hours=2)
        ) == 0  # fmt: skip
    with fake_regulator(platform) as regulator:
        assert await send_all(sending_to(platform, regulator, tmp_path)) == 1
    (got,) = regulator.received.reports.values()
    assert got["kind"] == "unlocks"
    assert got["window"] == {
        "since": "2026-01-02T00:00:00+08:00",
        "until": "2026-01-02T01:00:00+08:00",
    }
    assert [u["record_id"] for u in got["unlocks"]] == granted
    assert got["unlocks"][0] == {
        "record_id": granted[0],
        "lock_id": "lock-0001",
        "place": {"kind": "room", "ref": "A-301"},
        "subject_id": "psn_guest",
        "method": "passcode",
        "at": "2026-01-02T00:01:00+08:00",
    }
    assert got["unavailable_record_ids"] == []


@pytest.mark.req("L6", "L1")
async def test_the_background_sender_delivers_what_a_commit_queued(
    platform: Platform, tmp_path: Path
) -> None:
    subject = await register_guest(platform, ORG, people(1)[0])
    with fake_regulator(platform) as regulator:
        sender = ReportSender(sending_to(platform, regulator, tmp_path), poll_seconds=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(stop))
        try:
            report_id = await queue_check_in(platform, subject)  # the commit wakes the sender
            for _ in range(400):  # bounded wait for the other thread's answer, not a timing claim
                if report_id in regulator.received.reports:
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task
            await sender.aclose()
    assert list(regulator.received.reports) == [report_id]
    assert [r.status for r in await reports(platform)] == ["delivered"]


@pytest.mark.req("L6", "L10")
async def test_the_retention_sweep_drops_old_delivered_reports_and_keeps_unresolved_ones(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    guests = [await register_guest(platform, ORG, g) for g in people(2)]
    delivered = await queue_check_in(platform, guests[0], stay_id="stay-a")
    with fake_regulator(platform) as regulator:
        assert await send_all(sending_to(platform, regulator, tmp_path)) == 1
    parked = await queue_check_in(platform, guests[1], stay_id="stay-b")
    with fake_regulator(platform) as regulator:
        regulator.fail_with = 400
        assert await send_all(sending_to(platform, regulator, tmp_path)) == 1
    pending = await queue_check_in(platform, guests[1], stay_id="stay-c")
    clock.advance(days=default_policies()["unlock_record"].days + 1)
    await run_sweep(platform, registry=platform_sweepers())
    assert sorted(r.id for r in await reports(platform)) == sorted([parked, pending])
    assert delivered not in {r.id for r in await reports(platform)}
    async with platform.db.transaction() as session:
        left = (await session.execute(select(ReportAttempt.report_id))).scalars().all()
    assert left == [parked]


@pytest.mark.req("L6")
def test_probes_while_down_start_at_a_second_and_double_up_to_thirty() -> None:
    assert [probe_delay_seconds(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert probe_delay_seconds(10_000) == PROBE_CAP_SECONDS == 30
