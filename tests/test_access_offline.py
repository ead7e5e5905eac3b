"""Offline passcodes end to end without a network: the platform issues a code from its copy of
the lock's root key, the reference lock firmware checks it with its SE and the real code book;
revocation online (``access.revoke``), offline (clear codes typed on the keypad), by freezing
the person and by an epoch reset."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from anju.access.credentials.delivery import Deliveries
from anju.access.credentials.offline import OfflineRequest
from anju.access.credentials.service import CredentialService
from anju.access.freeze import FreezeService
from anju.access.grants import GrantService
from anju.access.models import AccessGrant, AccessOfflineCode
from anju.device.client import DeviceIdentity
from anju.device.lock import LockFirmware
from anju.devices.ca import ca_public_key
from anju.devices.commands import CommandService
from anju.errors import AnjuError
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.access import (
    DROP_COMMAND,
    FREEZE_COMMAND,
    REVOKE_COMMAND,
    UNFREEZE_COMMAND,
    Schedule,
)
from tests.support.access import (
    AccessWorld,
    access_world,
    args_of,
    commands_of,
    deliver_receipt,
    receipt,
    stay,
)
from tests.support.lock_access import command
from tests.support.plaintext_scan import scan_platform_storage
from tests.support.registry import Made

pytestmark = pytest.mark.req("L13", "L15", "R14")

ACTOR = "account:op-1"


@pytest.fixture
async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> AccessWorld:
    return await access_world(platform, clock, tmp_path)


def firmware(platform: Platform, made: Made, data_dir: Path) -> LockFirmware:
    """The reference lock (never connected) on the platform's clock, with its default book."""
    identity = DeviceIdentity(made.device_id, made.certificate, ca_public_key(platform.keys))
    return LockFirmware(
        identity,
        made.se,
        data_dir,
        now_ms=lambda: int(platform.clock.now().timestamp() * 1000),
    )


async def grant_for(
    platform: Platform, w: AccessWorld, subject: str = "guest-1", days: float = 2
) -> AccessGrant:
    spec = stay(subject, days=days, device_ids=(w.room.device_id, w.entrance.device_id))
    async with platform.db.transaction() as session:
        grant, _ = await GrantService(platform, session).create(ACTOR, w.org_a, spec)
        return grant


async def issue(
    platform: Platform, w: AccessWorld, grant: AccessGrant, kind: str = "period", **window: Any
) -> tuple[str, str, AccessOfflineCode]:
    """(credential id, the code, its metadata) for the room's lock."""
    async with platform.db.transaction() as session:
        credential, issued = await CredentialService(platform, session).issue_offline(
            ACTOR, w.org_a, grant.id, w.room.device_id, OfflineRequest(kind, **window)
        )
        return credential.id, issued.code, issued.meta


async def deliver_all(platform: Platform, lock: LockFirmware, made: Made, name: str) -> None:
    for queued in await commands_of(platform, made.device_id, name):
        assert await command(lock, name, args_of(queued)) == (True, None)


async def test_a_code_issued_by_the_platform_opens_its_lock_only_and_is_never_stored(
    platform: Platform, world: AccessWorld, tmp_path: Path, database_url: str
) -> None:
    grant = await grant_for(platform, world)
    cred_id, code, meta = await issue(platform, world, grant)
    assert (meta.kind, meta.epoch, meta.device_id) == ("period", 0, world.room.device_id)
    assert meta.valid_until is not None
    assert grant.valid_until is not None
    assert meta.valid_until <= grant.valid_until  # never wider than the permission
    lock = firmware(platform, world.room, tmp_path / "room")
    opened = lock.access.enter_passcode(code)
    assert (opened.granted, opened.method.value, opened.serial) == (
        True,
        "offline_passcode",
        meta.serial,
    )
    entrance = firmware(platform, world.entrance, tmp_path / "entrance")
    assert entrance.access.enter_passcode(code).reason == "unknown_credential"
    # A one-time code next to it gets its own serial and opens once.
    _, once, once_meta = await issue(platform, world, grant, "one_time")
    assert once_meta.serial != meta.serial
    assert lock.access.enter_passcode(once).granted
    assert lock.access.enter_passcode(once).reason == "already_used"
    async with platform.db.transaction() as session:
        rows = await CredentialService(platform, session).deliveries_of(world.org_a, cred_id)
        assert [r.state for r in rows] == ["offline"]
    assert scan_platform_storage(database_url, [code, once], tmp_path) == []


async def test_revoked_online_by_serial_or_offline_by_a_clear_code(
    platform: Platform, world: AccessWorld, tmp_path: Path
) -> None:
    grant = await grant_for(platform, world)
    first_id, first, first_meta = await issue(platform, world, grant)
    second_id, second, _ = await issue(platform, world, grant)
    online = firmware(platform, world.room, tmp_path / "online")
    assert online.access.enter_passcode(first).granted
    async with platform.db.transaction() as session:
        _, clear = await CredentialService(platform, session).revoke_with_clear_codes(
            ACTOR, world.org_a, first_id
        )
    assert set(clear) == {world.room.device_id}
    (revoke,) = await commands_of(platform, world.room.device_id, REVOKE_COMMAND)
    assert args_of(revoke) == {"epoch": 0, "offline": [first_meta.serial], "ekeys": []}
    assert await command(online, REVOKE_COMMAND, args_of(revoke)) == (True, None)
    refused = online.access.enter_passcode(first)
    assert (refused.granted, refused.reason) == (False, "revoked")
    assert online.access.enter_passcode(second).granted  # only that serial
    assert await deliver_receipt(
        platform, world.room, receipt(world.room, revoke, "revoke", "applied")
    )
    async with platform.db.transaction() as session:
        svc = CredentialService(platform, session)
        assert [r.state for r in await svc.deliveries_of(world.org_a, first_id)] == ["removed"]
        assert [r.state for r in await svc.deliveries_of(world.org_a, second_id)] == ["offline"]
        with pytest.raises(AnjuError) as again:
            await svc.revoke(ACTOR, world.org_a, first_id)
        assert again.value.code == "access_conflict"

    # A lock that never got the command: the clear code typed on its keypad revokes the code.
    offline = firmware(platform, world.room, tmp_path / "offline")
    typed = offline.access.enter_passcode(clear[world.room.device_id])
    assert (typed.granted, typed.reason) == (False, "cleared")
    assert offline.access.enter_passcode(first).reason == "revoked"
    for _ in range(5):  # typing a clear code again is no wrong attempt: no lockout
        assert offline.access.enter_passcode(clear[world.room.device_id]).reason == "cleared"
    assert offline.access.enter_passcode(second).granted


async def test_a_frozen_persons_offline_codes_are_revoked_and_stay_revoked_after_unfreezing(
    platform: Platform, world: AccessWorld, tmp_path: Path
) -> None:
    grant = await grant_for(platform, world, "tenant-7")
    other = await grant_for(platform, world, "guest-2")
    cred_id, code, meta = await issue(platform, world, grant)
    _, neighbour, _ = await issue(platform, world, other)
    lock = firmware(platform, world.room, tmp_path / "room")
    assert lock.access.enter_passcode(code).granted
    async with platform.db.transaction() as session:
        view = await FreezeService(platform, session).freeze(
            ACTOR, world.org_a, "tenant-7", "arrears"
        )
    assert list(view.clear_codes) == [world.room.device_id]
    await deliver_all(platform, lock, world.room, FREEZE_COMMAND)
    (revoke,) = await commands_of(platform, world.room.device_id, REVOKE_COMMAND)
    assert args_of(revoke)["offline"] == [meta.serial]
    await deliver_all(platform, lock, world.room, REVOKE_COMMAND)
    assert lock.access.enter_passcode(code).reason == "revoked"
    assert lock.access.enter_passcode(neighbour).granted
    async with platform.db.transaction() as session:
        lifted = await FreezeService(platform, session).lift(ACTOR, world.org_a, view.freeze.id)
        credential = await CredentialService(platform, session).get(world.org_a, cred_id)
        assert (credential.status, credential.end_reason) == ("revoked", "frozen")
        assert lifted.freeze.status == "lifted"
    await deliver_all(platform, lock, world.room, UNFREEZE_COMMAND)
    assert lock.access.enter_passcode(code).reason == "revoked"  # issue a new one instead
    # An offline lock that never heard of the freeze: the clear code does it at the keypad.
    offline = firmware(platform, world.room, tmp_path / "offline")
    assert offline.access.enter_passcode(view.clear_codes[world.room.device_id][0]).reason == (
        "cleared"
    )
    assert offline.access.enter_passcode(code).reason == "revoked"


async def test_an_epoch_reset_clear_code_typed_on_the_keypad_refuses_every_older_code(
    platform: Platform, world: AccessWorld, clock: FixedClock, tmp_path: Path
) -> None:
    grant = await grant_for(platform, world)
    old_id, old, _ = await issue(platform, world, grant)
    _, old_once, _ = await issue(platform, world, grant, "one_time")
    lock = firmware(platform, world.room, tmp_path / "room")
    assert lock.access.enter_passcode(old).granted
    async with platform.db.transaction() as session:
        epoch, clear, ended = await CredentialService(platform, session).reset_offline(
            ACTOR, world.org_a, world.room.device_id
        )
    assert (epoch, ended) == (1, 2)
    (pushed,) = await commands_of(platform, world.room.device_id, REVOKE_COMMAND)
    assert args_of(pushed) == {"epoch": 1, "offline": [], "ekeys": []}
    assert lock.access.enter_passcode(clear).reason == "cleared"
    assert lock.access.enter_passcode(old).reason == "epoch_revoked"
    assert lock.access.enter_passcode(old_once).reason == "epoch_revoked"
    _, fresh, fresh_meta = await issue(platform, world, grant)
    assert fresh_meta.epoch == 1
    assert lock.access.enter_passcode(fresh).granted
    async with platform.db.transaction() as session:
        credential = await CredentialService(platform, session).get(world.org_a, old_id)
        assert credential.end_reason == "epoch_reset"
        with pytest.raises(AnjuError) as other_org:
            await CredentialService(platform, session).reset_offline(
                ACTOR, world.org_b, world.room.device_id
            )
        assert other_org.value.code == "not_found"


@pytest.mark.req("R2")
async def test_windows_are_cut_to_the_grant_and_unsuitable_requests_are_refused(
    platform: Platform, world: AccessWorld, clock: FixedClock, tmp_path: Path
) -> None:
    grant = await grant_for(platform, world, days=1)
    assert grant.valid_until is not None
    _, _, meta = await issue(platform, world, grant, valid_until=clock.now() + timedelta(days=30))
    assert meta.valid_until is not None
    assert meta.valid_until <= grant.valid_until
    refusals = [
        ("permanent", {}),  # the grant has an end
        ("recurring", {}),  # the grant has no schedule
        ("clear", {}),  # not a kind one may issue
        ("period", {"valid_from": clock.now() + timedelta(days=3)}),  # after the grant
    ]
    for kind, window in refusals:
        with pytest.raises(AnjuError) as refused:
            await issue(platform, world, grant, kind, **window)
        assert refused.value.code == "invalid_input", kind
    async with platform.db.transaction() as session:
        svc = CredentialService(platform, session)
        with pytest.raises(AnjuError) as foreign:
            await svc.issue_offline(
                ACTOR, world.org_a, grant.id, world.other.device_id, OfflineRequest("period")
            )
        assert foreign.value.code == "not_found"
    # Four codes may start in the same hour on one lock; a fifth must start elsewhere.
    for _ in range(3):
        await issue(platform, world, grant)
    with pytest.raises(AnjuError) as full:
        await issue(platform, world, grant)
    assert (full.value.code, full.value.details["reason"]) == (
        "access_conflict",
        "offline_slots_full",
    )


@pytest.mark.req("R2")
async def test_a_recurring_code_follows_the_shift_and_a_permanent_one_needs_an_open_grant(
    platform: Platform, world: AccessWorld, clock: FixedClock, tmp_path: Path
) -> None:
    # 08:00–18:00 at UTC+8 every day; the fixture's clock is 08:00 local on 2026-01-01.
    shift = Schedule(127, 8 * 60, 18 * 60, 480)
    spec = replace(stay("staff-1", "staff", 30, device_ids=(world.room.device_id,)), schedule=shift)
    owner = stay("owner-1", "owner", 0, device_ids=(world.room.device_id,))
    async with platform.db.transaction() as session:
        staff_grant, _ = await GrantService(platform, session).create(ACTOR, world.org_a, spec)
        owner_grant, _ = await GrantService(platform, session).create(ACTOR, world.org_a, owner)
    _, code, meta = await issue(platform, world, staff_grant, "recurring")
    assert meta.kind == "recurring"
    assert json.loads(meta.recurrence or "{}") == {"weekdays": 127, "start_hour": 0, "hours": 10}
    _, forever, forever_meta = await issue(platform, world, owner_grant, "permanent")
    assert forever_meta.valid_until is None
    lock = firmware(platform, world.room, tmp_path / "room")
    assert lock.access.enter_passcode(code).granted
    clock.advance(hours=12)  # 20:00 local: after the shift
    assert lock.access.enter_passcode(code).reason == "outside_schedule"
    clock.advance(hours=12)  # 08:00 local the next day
    assert lock.access.enter_passcode(code).granted
    assert lock.access.enter_passcode(forever).granted


async def test_a_revocation_that_expired_unanswered_is_sent_again_not_dropped(
    platform: Platform, world: AccessWorld, clock: FixedClock, tmp_path: Path
) -> None:
    grant = await grant_for(platform, world, days=30)
    cred_id, code, meta = await issue(platform, world, grant, valid_until=None)
    async with platform.db.transaction() as session:
        await CredentialService(platform, session).revoke(ACTOR, world.org_a, cred_id)
    clock.advance(days=8)  # the lock stayed offline longer than the command lives
    async with platform.db.transaction() as session:
        await CommandService(platform, session).expire_due()
    async with platform.db.transaction() as session:
        assert await Deliveries(platform, session).reconcile(world.room.device_id) == 1
    revokes = await commands_of(platform, world.room.device_id, REVOKE_COMMAND)
    assert [c.status for c in revokes] == ["expired", "queued"]
    assert args_of(revokes[-1])["offline"] == [meta.serial]
    assert await commands_of(platform, world.room.device_id, DROP_COMMAND) == []
    lock = firmware(platform, world.room, tmp_path / "room")
    assert await command(lock, REVOKE_COMMAND, args_of(revokes[-1])) == (True, None)
    assert lock.access.enter_passcode(code).reason == "revoked"
    assert await deliver_receipt(
        platform, world.room, receipt(world.room, revokes[-1], "revoke", "applied")
    )
    async with platform.db.transaction() as session:
        rows = await CredentialService(platform, session).deliveries_of(world.org_a, cred_id)
        assert [r.state for r in rows] == ["removed"]
