"""The check-in / check-out journey on both backends: consent and real-name checks for every
guest, grants on the room lock and the common doors, a passcode and an eKey handed over once,
the regulator report queued; check-out ends every grant (wipe commands), starts the retention
clock and queues its report; any refusal leaves nothing written. Visitors get a pass of at
most 24 hours to chosen doors."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from anju.access.models import AccessCredential, AccessGrant
from anju.consent.gate import ConsentRequired
from anju.errors import InvalidInput
from anju.kit.clock import FixedClock
from anju.kit.crypto import SM2PrivateKey
from anju.platform import Platform
from anju.protocol.access import WIPE_COMMAND
from anju.reporting.models import Report
from anju.retention.models import RetentionAnchorEvent
from anju.stays.journey import GuestIn, StayService
from anju.stays.models import Booking, StayGuest
from anju.stays.rules import (
    AlreadyCheckedIn,
    BookingState,
    HeadcountMismatch,
    IdentityNotVerified,
    NotCheckedIn,
)
from tests.support.access import commands_of
from tests.support.registry import audit_entries
from tests.support.stays import CLERK, StaysWorld, book, draft, guest, stays_world

pytestmark = pytest.mark.req("L1", "L5", "L6", "R10", "N3")


@pytest.fixture
async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> StaysWorld:
    return await stays_world(platform, clock, tmp_path)


async def check_in(
    platform: Platform, world: StaysWorld, booking_id: str, guests: list[GuestIn], **kw: Any
) -> Any:
    async with platform.db.transaction() as session:
        return await StayService(platform, session).check_in(
            CLERK, world.org, booking_id, guests, **kw
        )


async def check_out(platform: Platform, world: StaysWorld, booking_id: str) -> Booking:
    async with platform.db.transaction() as session:
        return await StayService(platform, session).check_out(CLERK, world.org, booking_id)


async def counts(platform: Platform) -> tuple[int, int, int]:
    """(grants, credentials, checked-in guests) in the database."""
    async with platform.db.transaction() as session:
        out = []
        for table in (AccessGrant, AccessCredential, StayGuest):
            out.append(
                (await session.execute(select(func.count()).select_from(table))).scalar_one()
            )
    return out[0], out[1], out[2]


async def reports(platform: Platform) -> list[Report]:
    """The regulator reports queued, oldest first."""
    async with platform.db.transaction() as session:
        query = select(Report).order_by(Report.created_at, Report.kind.desc())
        return list((await session.execute(query)).scalars())


async def status_of(platform: Platform, booking_id: str) -> str:
    async with platform.db.transaction() as session:
        booking = await session.get(Booking, booking_id)
        assert booking is not None
        return booking.status


async def test_check_in_issues_passcode_and_ekey_on_room_and_common_doors(
    platform: Platform, world: StaysWorld
) -> None:
    lead = await guest(platform, world)
    no_face = await guest(platform, world, face="refused")  # still checks in (L4)
    booking = await book(platform, world, draft(platform.clock.now(), headcount=2))
    phone = SM2PrivateKey.generate()
    done = await check_in(
        platform, world, booking.id, [GuestIn(lead, phone.public_key.raw), GuestIn(no_face)]
    )
    assert done.booking.status == "checked_in"
    first, second = done.guests
    assert (first.face_consented, second.face_consented) == (True, False)
    doors = {world.access.room.device_id, world.access.entrance.device_id}
    assert set(first.ekey_tokens) == doors
    assert second.ekey_id is None
    assert second.ekey_tokens == {}
    assert first.passcode != second.passcode
    assert len(first.passcode) >= 6
    async with platform.db.transaction() as session:
        grant = await session.get(AccessGrant, second.grant_id)
        assert grant is not None
        assert (grant.person_type, grant.subject_id) == ("guest", no_face)
        assert set(json.loads(grant.device_ids)) == doors
        assert grant.valid_until == booking.ends_at
    # The regulator reports are queued, one per guest; no clear passcode in the audit log.
    queued = {(r.kind, r.subject_id, r.stay_id) for r in await reports(platform)}
    assert queued == {("check_in", lead, booking.id), ("check_in", no_face, booking.id)}
    for entry in await audit_entries(platform, "stays.checked_in"):
        assert first.passcode not in entry.details


async def test_double_check_in_and_check_out_without_check_in_are_refused(
    platform: Platform, world: StaysWorld
) -> None:
    subject = await guest(platform, world)
    booking = await book(platform, world, draft(platform.clock.now()))
    with pytest.raises(NotCheckedIn):
        await check_out(platform, world, booking.id)
    await check_in(platform, world, booking.id, [GuestIn(subject)])
    before = await counts(platform)
    with pytest.raises(AlreadyCheckedIn):
        await check_in(platform, world, booking.id, [GuestIn(subject)])
    assert await counts(platform) == before
    await check_out(platform, world, booking.id)
    with pytest.raises(NotCheckedIn):
        await check_out(platform, world, booking.id)
    with pytest.raises(BookingState):
        await check_in(platform, world, booking.id, [GuestIn(subject)])


async def test_headcount_mismatch_needs_a_staff_override_with_reason(
    platform: Platform, world: StaysWorld
) -> None:
    subject = await guest(platform, world)
    booking = await book(platform, world, draft(platform.clock.now(), headcount=2))
    with pytest.raises(HeadcountMismatch) as refused:
        await check_in(platform, world, booking.id, [GuestIn(subject)])
    assert refused.value.details == {"expected": 2, "given": 1}
    assert await counts(platform) == (0, 0, 0)
    with pytest.raises(InvalidInput):
        await check_in(platform, world, booking.id, [GuestIn(subject)], override_reason=" ")
    done = await check_in(
        platform, world, booking.id, [GuestIn(subject)], override_reason="第二位客人未到"
    )
    assert done.booking.headcount_override
    assert done.booking.override_reason == "第二位客人未到"
    (entry,) = await audit_entries(platform, "stays.checked_in")
    assert json.loads(entry.details)["headcount_override"] is True


@pytest.mark.parametrize("missing", ["regulator", "verification"])
async def test_a_guest_without_consent_or_verification_stops_the_whole_check_in(
    platform: Platform, world: StaysWorld, missing: str
) -> None:
    ready = await guest(platform, world)
    if missing == "regulator":
        other = await guest(platform, world, regulator=False)
    else:
        other = await guest(platform, world, verified=False)
    booking = await book(platform, world, draft(platform.clock.now(), headcount=2))
    expected = ConsentRequired if missing == "regulator" else IdentityNotVerified
    with pytest.raises(expected) as refused:
        await check_in(platform, world, booking.id, [GuestIn(ready), GuestIn(other)])
    assert refused.value.details["subject_id"] == other
    # Nothing half-written: no grant, credential, guest row, report or state change.
    assert await counts(platform) == (0, 0, 0)
    assert await reports(platform) == []
    assert await status_of(platform, booking.id) == "booked"


async def test_withdrawn_privacy_consent_refuses_check_in(
    platform: Platform, world: StaysWorld
) -> None:
    from tests.support.stays import consent_to

    subject = await guest(platform, world)
    await consent_to(
        platform, world, subject, "privacy_policy", "identity_verification", "withdrawn"
    )
    booking = await book(platform, world, draft(platform.clock.now()))
    with pytest.raises(ConsentRequired) as refused:
        await check_in(platform, world, booking.id, [GuestIn(subject)])
    assert refused.value.details["status"] == "withdrawn"


async def test_check_out_ends_grants_wipes_locks_and_starts_retention(
    platform: Platform, world: StaysWorld
) -> None:
    subject = await guest(platform, world)
    booking = await book(platform, world, draft(platform.clock.now()))
    done = await check_in(platform, world, booking.id, [GuestIn(subject)])
    platform.clock.advance(hours=20)  # type: ignore[attr-defined]
    out = await check_out(platform, world, booking.id)
    assert out.status == "checked_out"
    async with platform.db.transaction() as session:
        grant = await session.get(AccessGrant, done.guests[0].grant_id)
        assert grant is not None
        assert (grant.status, grant.end_reason) == ("revoked", "checked_out")
        anchor = await session.get(RetentionAnchorEvent, (subject, "check_out"))
        assert anchor is not None
        assert anchor.at == platform.clock.now()
    for lock in (world.access.room, world.access.entrance):
        (wipe,) = await commands_of(platform, lock.device_id, WIPE_COMMAND)
        assert json.loads(wipe.args)["subject"] == subject
    assert [r.kind for r in await reports(platform)] == ["check_in", "check_out"]
    (entry,) = await audit_entries(platform, "stays.checked_out")
    assert json.loads(entry.details)["early"] is True


async def test_a_visitor_gets_a_pass_of_at_most_a_day_to_chosen_doors(
    platform: Platform, world: StaysWorld
) -> None:
    host = await guest(platform, world)
    visitor = await guest(platform, world, face=None)
    now = platform.clock.now()
    booking = await book(platform, world, draft(now, hours=72))

    async def visit(**kw: Any) -> Any:
        async with platform.db.transaction() as session:
            return await StayService(platform, session).add_visitor(
                CLERK, world.org, booking.id, visitor, **kw
            )

    with pytest.raises(NotCheckedIn):
        await visit(valid_from=now, valid_until=now + timedelta(hours=2))
    await check_in(platform, world, booking.id, [GuestIn(host)])
    with pytest.raises(InvalidInput):
        await visit(valid_from=now, valid_until=now + timedelta(hours=25))
    with pytest.raises(InvalidInput):
        await visit(valid_from=now, valid_until=now + timedelta(hours=2), doors="garage")
    granted = await visit(valid_from=now, valid_until=now + timedelta(hours=3), doors="common")
    assert granted.passcode.isdigit()
    async with platform.db.transaction() as session:
        grant = await session.get(AccessGrant, granted.visitor.grant_id)
        assert grant is not None
        assert grant.person_type == "visitor"
        assert json.loads(grant.device_ids) == [world.access.entrance.device_id]
    await check_out(platform, world, booking.id)
    async with platform.db.transaction() as session:
        grant = await session.get(AccessGrant, granted.visitor.grant_id)
        assert grant is not None
        assert grant.status == "revoked"


async def test_consent_under_an_earlier_notice_is_stale_and_refused(
    platform: Platform, world: StaysWorld
) -> None:
    from anju.consent.service import ConsentService
    from tests.support.consent import privacy_policy

    subject = await guest(platform, world)
    async with platform.db.transaction() as session:
        await ConsentService(platform, session).publish(
            world.org, "account:dpo", privacy_policy("新版隐私政策：我们为实名登记处理您的信息。")
        )
    booking = await book(platform, world, draft(platform.clock.now()))
    with pytest.raises(ConsentRequired) as refused:
        await check_in(platform, world, booking.id, [GuestIn(subject)])
    assert refused.value.details["status"] == "stale"
    assert await counts(platform) == (0, 0, 0)
