"""Credentials on the platform: passcodes, cards and eKeys through their lifecycle, with a
per-lock delivery state that only the lock's signed receipt turns into installed / removed."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from anju.access.credentials.delivery import Deliveries
from anju.access.credentials.service import CredentialService
from anju.access.grants import GrantService
from anju.access.keys import access_certificate, card_key
from anju.access.models import AccessDelivery, AccessGrant
from anju.audit.models import AuditEntry
from anju.devices.ca import ca_public_key
from anju.devices.commands import CommandService
from anju.devices.commands.service import DeviceAck
from anju.errors import AnjuError
from anju.kit.clock import FixedClock
from anju.kit.crypto import SM2PrivateKey
from anju.platform import Platform
from anju.protocol.access import (
    DROP_COMMAND,
    PASSCODE_LABEL,
    PUT_COMMAND,
    REVOKE_COMMAND,
    CredentialKind,
    card_response_ok,
    check_ekey,
    ekey_proof_message,
    open_credential,
    split_card_secret,
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
from tests.support.plaintext_scan import scan_platform_storage

ACTOR = "account:op-1"


@pytest.fixture
async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> AccessWorld:
    return await access_world(platform, clock, tmp_path)


async def grant_for(platform: Platform, w: AccessWorld, **kwargs: object) -> AccessGrant:
    spec = stay(device_ids=(w.room.device_id, w.entrance.device_id), **kwargs)  # type: ignore[arg-type]
    async with platform.db.transaction() as session:
        grant, _ = await GrantService(platform, session).create(ACTOR, w.org_a, spec)
        return grant


async def states(platform: Platform, credential_id: str) -> dict[str, str]:
    async with platform.db.transaction() as session:
        rows = await Deliveries(platform, session).view(credential_id)
        return {r.device_id: r.state for r in rows}


def open_box(platform: Platform, w: AccessWorld, lock_index: int, command_args: dict[str, str]):  # type: ignore[no-untyped-def]
    lock = (w.room, w.entrance)[lock_index]
    now = int(platform.clock.now().timestamp())
    return open_credential(
        command_args["box"],
        device_id=lock.device_id,
        cred_id=command_args["cred"],
        decrypt=lock.se.decrypt,
        signer=access_certificate(platform.keys, platform.settings.audit_origin, now),
        ca=ca_public_key(platform.keys),
        now_s=now,
    )


async def send_and_ack(platform: Platform, command_id: str, device_id: str) -> None:
    async with platform.db.transaction() as session:
        commands = CommandService(platform, session)
        await commands.mark_sent([command_id])
        await commands.record_acks([DeviceAck(device_id, command_id, True, None)])


@pytest.mark.req("L13", "L9", "R9")
async def test_a_passcode_reaches_each_lock_sealed_and_is_installed_only_by_a_signed_receipt(
    platform: Platform, world: AccessWorld
) -> None:
    grant = await grant_for(platform, world)
    async with platform.db.transaction() as session:
        cred, digits = await CredentialService(platform, session).issue_passcode(
            ACTOR, world.org_a, grant.id
        )
    assert len(digits) == 8
    assert digits.isdigit()
    assert await states(platform, cred.id) == {
        world.room.device_id: "queued",
        world.entrance.device_id: "queued",
    }
    (put,) = await commands_of(platform, world.room.device_id, PUT_COMMAND)
    record = open_box(platform, world, 0, args_of(put))  # only the lock's SE opens it
    assert record.secret == digits.encode()
    assert record.subject == "guest-1"
    assert record.kind == CredentialKind.PASSCODE
    assert record.until_ms is not None
    async with platform.db.transaction() as session:
        row = await session.get(AccessDelivery, (cred.id, world.room.device_id))
        assert row is not None
        assert row.passcode_digest == world.room.se.hmac(PASSCODE_LABEL, digits.encode()).hex()

    await send_and_ack(platform, put.id, world.room.device_id)
    assert (await states(platform, cred.id))[world.room.device_id] == "sent"  # an ack is not proof

    forged = receipt(world.entrance, put, "put", "installed", cred=cred.id)  # another lock's key
    forged["rec"]["dev"] = world.room.device_id
    assert not await deliver_receipt(platform, world.room, forged)
    unsigned = receipt(world.room, put, "put", "installed", cred=cred.id)
    unsigned["rec"]["state"] = "installed "
    assert not await deliver_receipt(platform, world.room, unsigned)  # signature breaks
    assert (await states(platform, cred.id))[world.room.device_id] == "sent"

    good = receipt(world.room, put, "put", "installed", cred=cred.id)
    assert await deliver_receipt(platform, world.room, good)
    assert await deliver_receipt(platform, world.room, good, event_id="e1")  # a repeat: same
    assert (await states(platform, cred.id))[world.room.device_id] == "installed"
    assert (await states(platform, cred.id))[world.entrance.device_id] == "queued"


@pytest.mark.req("L13", "R9")
async def test_suspend_resume_revoke_follow_the_locks_receipts(
    platform: Platform, world: AccessWorld
) -> None:
    grant = await grant_for(platform, world)
    async with platform.db.transaction() as session:
        cred, _ = await CredentialService(platform, session).issue_passcode(
            ACTOR, world.org_a, grant.id
        )
    (put,) = await commands_of(platform, world.room.device_id, PUT_COMMAND)
    await deliver_receipt(
        platform, world.room, receipt(world.room, put, "put", "installed", cred=cred.id)
    )
    async with platform.db.transaction() as session:
        await CredentialService(platform, session).suspend(ACTOR, world.org_a, cred.id)
    assert set((await states(platform, cred.id)).values()) == {"removing"}
    (drop,) = await commands_of(platform, world.room.device_id, DROP_COMMAND)
    assert args_of(drop) == {"cred": cred.id}
    # A late receipt of the older put changes nothing now.
    await deliver_receipt(
        platform, world.room, receipt(world.room, put, "put", "installed", cred=cred.id), "e2"
    )
    assert (await states(platform, cred.id))[world.room.device_id] == "removing"
    await deliver_receipt(
        platform, world.room, receipt(world.room, drop, "drop", "removed", cred=cred.id), "e3"
    )
    assert (await states(platform, cred.id))[world.room.device_id] == "removed"

    async with platform.db.transaction() as session:
        await CredentialService(platform, session).resume(ACTOR, world.org_a, cred.id)
    puts = await commands_of(platform, world.room.device_id, PUT_COMMAND)
    assert len(puts) == 2
    assert args_of(puts[1])["box"] == args_of(puts[0])["box"]
    assert (await states(platform, cred.id))[world.room.device_id] == "queued"

    async with platform.db.transaction() as session:
        ended = await CredentialService(platform, session).revoke(ACTOR, world.org_a, cred.id)
        assert ended.status == "revoked"
        assert ended.end_reason == "revoked"
    async with platform.db.transaction() as session:
        rows = (await session.execute(select(AccessDelivery))).scalars().all()
        assert all(r.box is None for r in rows)  # nothing left to re-send
    with pytest.raises(AnjuError) as again:
        async with platform.db.transaction() as session:
            await CredentialService(platform, session).resume(ACTOR, world.org_a, cred.id)
    assert again.value.code == "access_conflict"


@pytest.mark.req("L13", "L9", "R9")
async def test_the_passcode_is_shown_once_and_never_stored_audited_or_logged(
    platform: Platform,
    world: AccessWorld,
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    chosen = "730194628517"
    grant = await grant_for(platform, world)
    async with platform.db.transaction() as session:
        _, digits = await CredentialService(platform, session).issue_passcode(
            ACTOR, world.org_a, grant.id, chosen
        )
    assert digits == chosen
    assert scan_platform_storage(database_url, [chosen], tmp_path) == []
    async with platform.db.transaction() as session:
        entries = (await session.execute(select(AuditEntry))).scalars().all()
    assert any(e.action == "access.credential.issued" for e in entries)
    assert chosen not in caplog.text


@pytest.mark.req("L13", "L17")
async def test_a_passcode_already_on_a_lock_is_refused_until_it_is_removed(
    platform: Platform, world: AccessWorld
) -> None:
    grant = await grant_for(platform, world)
    other = await grant_for(platform, world, subject="guest-2")
    async with platform.db.transaction() as session:
        first, _ = await CredentialService(platform, session).issue_passcode(
            ACTOR, world.org_a, grant.id, "123456"
        )
    with pytest.raises(AnjuError) as refused:
        async with platform.db.transaction() as session:
            await CredentialService(platform, session).issue_passcode(
                ACTOR, world.org_a, other.id, "123456"
            )
    assert refused.value.code == "passcode_in_use"
    assert refused.value.status == 409
    async with platform.db.transaction() as session:
        await CredentialService(platform, session).revoke(ACTOR, world.org_a, first.id)
    for lock in (world.room, world.entrance):
        (drop,) = await commands_of(platform, lock.device_id, DROP_COMMAND)
        await deliver_receipt(platform, lock, receipt(lock, drop, "drop", "removed", cred=first.id))
    async with platform.db.transaction() as session:
        _, digits = await CredentialService(platform, session).issue_passcode(
            ACTOR, world.org_a, other.id, "123456"
        )
    assert digits == "123456"


@pytest.mark.req("L13", "R9")
async def test_a_card_key_answers_the_lock_and_a_lost_card_is_dropped_and_replaced(
    platform: Platform, world: AccessWorld
) -> None:
    grant = await grant_for(platform, world)
    async with platform.db.transaction() as session:
        card, key = await CredentialService(platform, session).issue_card(
            ACTOR, world.org_a, grant.id, "04A1B2C3D4E5F6"
        )
    assert key == card_key(platform.keys, card.id)
    assert card.card_uid == "04a1b2c3d4e5f6"
    (put,) = await commands_of(platform, world.room.device_id, PUT_COMMAND)
    uid, lock_key = split_card_secret(open_box(platform, world, 0, args_of(put)).secret)
    assert (uid, lock_key) == ("04a1b2c3d4e5f6", key)
    with pytest.raises(AnjuError) as twice:
        async with platform.db.transaction() as session:
            await CredentialService(platform, session).issue_card(
                ACTOR, world.org_a, grant.id, "04a1b2c3d4e5f6"
            )
    assert twice.value.code == "access_conflict"

    async with platform.db.transaction() as session:
        lost = await CredentialService(platform, session).revoke(
            ACTOR, world.org_a, card.id, reason="lost"
        )
        assert lost.end_reason == "lost"
    assert len(await commands_of(platform, world.entrance.device_id, DROP_COMMAND)) == 1
    async with platform.db.transaction() as session:
        with pytest.raises(AnjuError):
            await CredentialService(platform, session).replace(
                ACTOR, world.org_a, card.id, uid="a1b2c3d4"
            )

    grant2 = await grant_for(platform, world, subject="guest-3")
    async with platform.db.transaction() as session:
        old, _ = await CredentialService(platform, session).issue_card(
            ACTOR, world.org_a, grant2.id, "a1b2c3d4"
        )
    async with platform.db.transaction() as session:
        new, handover = await CredentialService(platform, session).replace(
            ACTOR, world.org_a, old.id, uid="b1b2c3d4"
        )
    assert new.replaces == old.id
    assert handover["card_uid"] == "b1b2c3d4"
    assert bytes.fromhex(handover["card_key"]) != key
    async with platform.db.transaction() as session:
        assert (
            await CredentialService(platform, session).get(world.org_a, old.id)
        ).end_reason == "replaced"
    challenge = b"\x01" * 16
    from anju.protocol.access import card_response

    answer = card_response(
        bytes.fromhex(handover["card_key"]),
        uid="b1b2c3d4",
        device_id=world.room.device_id,
        challenge=challenge,
    )
    assert card_response_ok(
        bytes.fromhex(handover["card_key"]),
        answer,
        uid="b1b2c3d4",
        device_id=world.room.device_id,
        challenge=challenge,
    )
    assert not card_response_ok(
        key, answer, uid="b1b2c3d4", device_id=world.room.device_id, challenge=challenge
    )


@pytest.mark.req("L13", "R9")
async def test_an_ekey_token_verifies_at_its_lock_and_revocation_goes_by_id(
    platform: Platform, world: AccessWorld
) -> None:
    phone = SM2PrivateKey.generate()
    grant = await grant_for(platform, world)
    async with platform.db.transaction() as session:
        ekey, tokens = await CredentialService(platform, session).issue_ekey(
            ACTOR, world.org_a, grant.id, phone.public_key.raw
        )
    assert set(tokens) == {world.room.device_id, world.entrance.device_id}
    now_ms = int(platform.clock.now().timestamp() * 1000)
    challenge = b"\x07" * 16
    proof = phone.sign(
        ekey_proof_message(challenge, device_id=world.room.device_id, key_id=ekey.id)
    )
    token = check_ekey(
        tokens[world.room.device_id],
        proof,
        signer=access_certificate(platform.keys, platform.settings.audit_origin, now_ms // 1000),
        ca=ca_public_key(platform.keys),
        device_id=world.room.device_id,
        challenge=challenge,
        now_ms=now_ms,
    )
    assert token.subject == "guest-1"
    assert token.epoch == 0
    assert set((await states(platform, ekey.id)).values()) == {"token"}
    async with platform.db.transaction() as session:
        await CredentialService(platform, session).revoke(ACTOR, world.org_a, ekey.id)
    (revoke,) = await commands_of(platform, world.room.device_id, REVOKE_COMMAND)
    assert args_of(revoke) == {"epoch": 0, "offline": [], "ekeys": [ekey.id]}
    await deliver_receipt(platform, world.room, receipt(world.room, revoke, "revoke", "applied"))
    assert await states(platform, ekey.id) == {
        world.room.device_id: "removed",
        world.entrance.device_id: "removing",
    }


@pytest.mark.req("L13", "L17")
async def test_a_command_that_expires_unanswered_is_failed_then_queued_again(
    platform: Platform, clock: FixedClock, world: AccessWorld
) -> None:
    grant = await grant_for(platform, world, days=30)
    async with platform.db.transaction() as session:
        cred, _ = await CredentialService(platform, session).issue_passcode(
            ACTOR, world.org_a, grant.id
        )
    clock.advance(days=8)  # the lock stayed offline longer than any command lives
    async with platform.db.transaction() as session:
        await CommandService(platform, session).expire_due()
    assert set((await states(platform, cred.id)).values()) == {"failed"}
    async with platform.db.transaction() as session:
        assert await Deliveries(platform, session).reconcile() == 2
    assert set((await states(platform, cred.id)).values()) == {"queued"}
    puts = await commands_of(platform, world.room.device_id, PUT_COMMAND)
    assert [c.status for c in puts] == ["expired", "queued"]


@pytest.mark.req("L13", "L17")
async def test_revoking_a_grant_while_issuing_under_it_ends_consistent(
    platform: Platform, world: AccessWorld
) -> None:
    grant = await grant_for(platform, world)

    async def issue() -> str:
        async with platform.db.transaction() as session:
            cred, _ = await CredentialService(platform, session).issue_passcode(
                ACTOR, world.org_a, grant.id
            )
            return cred.id

    async def revoke() -> None:
        async with platform.db.transaction() as session:
            await GrantService(platform, session).revoke(ACTOR, world.org_a, grant.id)

    results = await asyncio.gather(issue(), revoke(), return_exceptions=True)
    async with platform.db.transaction() as session:
        creds = await CredentialService(platform, session).repo.credentials_of_grant(grant.id)
        assert (
            await GrantService(platform, session).get(world.org_a, grant.id)
        ).status == "revoked"
    if isinstance(results[0], BaseException):
        assert isinstance(results[0], AnjuError)
        assert results[0].code == "access_conflict"
        assert creds == []
    else:
        assert [c.status for c in creds] == ["revoked"]  # issued first, then ended with the grant
