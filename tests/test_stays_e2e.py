"""The stay journey end to end on both backends: check-in through the real gateway and broker
to the reference lock firmware — the guest's passcode opens the room — and check-out makes the
lock wipe the guest and refuse the same passcode."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.models import AccessDelivery, AccessLockOperation
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.stays.journey import GuestIn, StayService
from tests.support.firmware import poll
from tests.support.online_lock import lock_online
from tests.support.stays import CLERK, book, draft, guest, stays_world

pytestmark = pytest.mark.req("L1", "L5", "L6", "R10")


async def test_checked_in_guest_opens_the_room_and_check_out_wipes_the_lock(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    world = await stays_world(platform, clock, tmp_path)
    room = world.access.room
    subject = await guest(platform, world, face="refused")
    booking = await book(platform, world, draft(clock.now(), hours=30))
    async with lock_online(platform, room, tmp_path / "lock", clock) as (lock, _gateway):
        async with platform.db.transaction() as session:
            done = await StayService(platform, session).check_in(
                CLERK, world.org, booking.id, [GuestIn(subject)]
            )
        keys = done.guests[0]

        async def installed(session: AsyncSession) -> bool:
            row = await session.get(AccessDelivery, (keys.passcode_id, room.device_id))
            return row is not None and row.state == "installed"

        await poll(platform, installed)
        opened = lock.access.enter_passcode(keys.passcode)
        assert opened.granted
        assert opened.cred == keys.passcode_id

        async with platform.db.transaction() as session:
            await StayService(platform, session).check_out(CLERK, world.org, booking.id)

        async def wiped(session: AsyncSession) -> bool:
            query = select(AccessLockOperation).where(
                AccessLockOperation.device_id == room.device_id,
                AccessLockOperation.op == "wipe",
            )
            row = (await session.execute(query)).scalar_one_or_none()
            return row is not None and row.state == "applied"

        await poll(platform, wiped)
        assert lock.access.store.of_subject(subject) == []
        refused = lock.access.enter_passcode(keys.passcode)
        assert not refused.granted
