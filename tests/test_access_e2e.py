"""Access control end to end: the platform's services, the real gateway and broker, and the
reference lock firmware — nothing stands in for another part.

A passcode issued on the platform reaches the lock sealed to its SE; the platform calls it
installed only when the lock's signed receipt arrives; the lock opens for it and the signed
unlock record lands in the platform's searchable records; a freeze reaches the lock and the
same passcode is refused; five wrong guesses lock the keypad and raise an alarm the platform
shows. Both database backends, through the embedded broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.credentials.service import CredentialService
from anju.access.freeze import FreezeService
from anju.access.grants import GrantService
from anju.access.models import AccessDelivery, AccessLockOperation
from anju.alarms.models import Alarm
from anju.device.lock import LockFirmware
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.unlocks.models import UnlockRecord
from tests.support.access import AccessWorld, access_world, stay
from tests.support.online_lock import lock_online

pytestmark = pytest.mark.req("L5", "L9", "L13", "L15", "L17", "R2", "R9", "R14")

ACTOR = "account:e2e-manager"


async def _eventually(
    platform: Platform, check: Callable[[AsyncSession], Awaitable[Any]], within: float = 20.0
) -> Any:
    """Poll the database until ``check`` returns something truthy; return it."""
    async with asyncio.timeout(within):
        while True:
            async with platform.db.transaction() as session:
                found = await check(session)
            if found:
                return found
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def room_lock_online(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> AsyncIterator[tuple[AccessWorld, LockFirmware]]:
    """Org A's room lock running the reference firmware, connected through the real gateway."""
    w = await access_world(platform, clock, tmp_path)
    async with lock_online(platform, w.room, tmp_path / "lock", clock) as (lock, _gateway):
        yield w, lock


async def installed_passcode(
    platform: Platform, w: AccessWorld, subject: str
) -> tuple[str, str, str]:
    """(grant id, credential id, digits) once the room lock's signed receipt says installed."""
    async with platform.db.transaction() as session:
        grant, _ = await GrantService(platform, session).create(
            ACTOR, w.org_a, stay(subject, device_ids=(w.room.device_id,))
        )
        credential, digits = await CredentialService(platform, session).issue_passcode(
            ACTOR, w.org_a, grant.id
        )

    async def installed(session: AsyncSession) -> AccessDelivery | None:
        row = await session.get(AccessDelivery, (credential.id, w.room.device_id))
        return row if row is not None and row.state == "installed" else None

    delivery = await _eventually(platform, installed)
    assert delivery.confirmed_at is not None
    return grant.id, credential.id, digits


async def test_passcode_freeze_and_alarm_through_the_real_gateway(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    async with room_lock_online(platform, clock, tmp_path) as (w, lock):
        room = w.room
        _, credential_id, digits = await installed_passcode(platform, w, "guest-e2e")

        # The lock opens for the passcode; the signed record reaches the platform.
        verdict = lock.access.enter_passcode(digits)
        assert verdict.granted
        assert verdict.cred == credential_id

        async def unlock_record(session: AsyncSession) -> UnlockRecord | None:
            query = select(UnlockRecord).where(UnlockRecord.event_id == verdict.event_id)
            return (await session.execute(query)).scalar_one_or_none()

        record = await _eventually(platform, unlock_record)
        assert (record.result, record.method, record.credential_id) == (
            "granted",
            "passcode",
            credential_id,
        )
        assert (record.place_kind, record.place_ref) == ("room", "101")
        assert digits not in record.record  # the record names the credential, never the code

        # Freeze: the lock confirms with a signed receipt, then refuses the same passcode.
        async with platform.db.transaction() as session:
            frozen = await FreezeService(platform, session).freeze(
                ACTOR, w.org_a, "guest-e2e", "arrears"
            )

        async def freeze_applied(session: AsyncSession) -> bool:
            query = select(AccessLockOperation).where(
                AccessLockOperation.freeze_id == frozen.freeze.id,
                AccessLockOperation.device_id == room.device_id,
            )
            row = (await session.execute(query)).scalar_one_or_none()
            return row is not None and row.state == "applied"

        await _eventually(platform, freeze_applied)
        refused = lock.access.enter_passcode(digits)
        assert not refused.granted
        assert refused.reason == "frozen"

        # Brute force: five wrong guesses lock the keypad and raise an alarm on the platform.
        wrong = "0" * len(digits) if digits != "0" * len(digits) else "1" * len(digits)
        for _ in range(5):
            assert not lock.access.enter_passcode(wrong).granted
        assert lock.access.enter_passcode(wrong).reason == "locked_out"

        async def alarm(session: AsyncSession) -> Alarm | None:
            query = select(Alarm).where(
                Alarm.device_id == room.device_id, Alarm.kind == "wrong_attempts"
            )
            return (await session.execute(query)).scalars().first()

        raised = await _eventually(platform, alarm)
        assert (raised.source, raised.status, raised.org_id) == ("lock", "active", w.org_a)


async def test_check_out_wipes_the_person_from_the_lock_with_a_signed_confirmation(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    async with room_lock_online(platform, clock, tmp_path) as (w, lock):
        grant_id, credential_id, digits = await installed_passcode(platform, w, "guest-out")
        assert lock.access.enter_passcode(digits).granted

        # Check-out: the grant ends; the lock is told to wipe the person and confirms it.
        async with platform.db.transaction() as session:
            await GrantService(platform, session).revoke(
                ACTOR, w.org_a, grant_id, reason="checked_out"
            )

        async def wiped(session: AsyncSession) -> bool:
            query = select(AccessLockOperation).where(
                AccessLockOperation.device_id == w.room.device_id,
                AccessLockOperation.op == "wipe",
            )
            row = (await session.execute(query)).scalar_one_or_none()
            delivery = await session.get(AccessDelivery, (credential_id, w.room.device_id))
            return (
                row is not None
                and row.state == "applied"
                and row.confirmed_at is not None
                and delivery is not None
                and delivery.state == "removed"
            )

        await _eventually(platform, wiped)
        assert lock.access.store.of_subject("guest-out") == []
        refused = lock.access.enter_passcode(digits)
        assert not refused.granted
        assert refused.reason == "unknown_credential"
