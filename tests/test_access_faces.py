"""Face credentials (bio.load / bio.drop with states from the lock's command ack), fingerprints
refused, and the new kinds over HTTP behind the second factor."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from anju.access.credentials.delivery import Deliveries
from anju.access.credentials.service import CredentialService
from anju.access.grants import GrantService
from anju.access.models import AccessGrant
from anju.biometrics.device_path import DeviceFaces
from anju.biometrics.service import BiometricService, Operator
from anju.devices.commands import CommandService
from anju.devices.commands.service import DeviceAck
from anju.errors import AnjuError
from anju.face.template import BITS, ProtectedTemplate
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.biometrics import DROP_COMMAND, LOAD_COMMAND
from tests.support.access import (
    AccessWorld,
    access_world,
    args_of,
    commands_of,
    manager,
    stay,
    stepped_up,
)
from tests.support.consent import face_notice, publish, record
from tests.support.http import api_client, code_of

pytestmark = pytest.mark.req("L9", "L13", "R9")

ACTOR = "account:op-1"
SUBJECT = "tenant-3"
BASE = "/api/v1/access"


@pytest.fixture
async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> AccessWorld:
    return await access_world(platform, clock, tmp_path)


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(platform) as c:
        yield c


async def enrolled(platform: Platform, subject: str = SUBJECT) -> None:
    """A face template in force for ``subject`` (as a lock's enrolment leaves it)."""
    template = ProtectedTemplate(os.urandom(BITS // 8))
    async with platform.db.transaction() as session:
        await BiometricService(platform, session).store_protected(
            subject, 1, template, Operator("test", "desk-1")
        )


async def grant_for(platform: Platform, w: AccessWorld) -> AccessGrant:
    spec = stay(SUBJECT, "tenant", 30, device_ids=(w.room.device_id, w.entrance.device_id))
    async with platform.db.transaction() as session:
        grant, _ = await GrantService(platform, session).create(ACTOR, w.org_a, spec)
        return grant


async def ack(platform: Platform, device_id: str, command_id: str, code: str | None) -> None:
    async with platform.db.transaction() as session:
        commands = CommandService(platform, session)
        await commands.mark_sent([command_id])
        await commands.record_acks([DeviceAck(device_id, command_id, code is None, code)])


async def states(platform: Platform, w: AccessWorld, credential_id: str) -> dict[str, str]:
    async with platform.db.transaction() as session:
        rows = await CredentialService(platform, session).deliveries_of(w.org_a, credential_id)
        return {r.device_id: r.state for r in rows}


async def test_a_face_is_offered_to_each_door_and_withdrawn_on_revoke(
    platform: Platform, world: AccessWorld
) -> None:
    grant = await grant_for(platform, world)
    async with platform.db.transaction() as session:
        with pytest.raises(AnjuError) as no_template:
            await CredentialService(platform, session).issue_face(ACTOR, world.org_a, grant.id)
    assert no_template.value.code == "not_found"
    await enrolled(platform)
    async with platform.db.transaction() as session:
        face = await CredentialService(platform, session).issue_face(ACTOR, world.org_a, grant.id)
    room, entrance = world.room.device_id, world.entrance.device_id
    (load,) = await commands_of(platform, room, LOAD_COMMAND)
    assert args_of(load) == {"subject": SUBJECT, "version": 1}  # no template in the outbox
    (full,) = await commands_of(platform, entrance, LOAD_COMMAND)
    assert await states(platform, world, face.id) == {room: "queued", entrance: "queued"}
    await ack(platform, room, load.id, None)
    await ack(platform, entrance, full.id, "bio_store_full")
    # Not "installed": the lock took the offer and fetches the template itself.
    assert await states(platform, world, face.id) == {room: "accepted", entrance: "refused"}
    async with platform.db.transaction() as session:
        answer = await DeviceFaces(platform, session).data_for(room, SUBJECT, 1)
    assert answer["code"] is None
    assert answer["tpl"]

    async with platform.db.transaction() as session:
        svc = CredentialService(platform, session)
        with pytest.raises(AnjuError) as twice:
            await svc.issue_face(ACTOR, world.org_a, grant.id)
        assert twice.value.details["reason"] == "face_in_use"
        await svc.revoke(ACTOR, world.org_a, face.id)
    (drop,) = await commands_of(platform, room, DROP_COMMAND)
    assert args_of(drop) == {"subject": SUBJECT}
    assert await commands_of(platform, entrance, DROP_COMMAND) == []  # it never held it
    assert await states(platform, world, face.id) == {room: "removing", entrance: "refused"}
    await ack(platform, room, drop.id, None)
    assert (await states(platform, world, face.id))[room] == "withdrawn"


async def test_suspend_and_resume_drop_and_offer_the_face_again(
    platform: Platform, world: AccessWorld
) -> None:
    await enrolled(platform)
    grant = await grant_for(platform, world)
    async with platform.db.transaction() as session:
        face = await CredentialService(platform, session).issue_face(ACTOR, world.org_a, grant.id)
        await CredentialService(platform, session).suspend(ACTOR, world.org_a, face.id)
    assert len(await commands_of(platform, world.room.device_id, DROP_COMMAND)) == 1
    async with platform.db.transaction() as session:
        await CredentialService(platform, session).resume(ACTOR, world.org_a, face.id)
    loads = await commands_of(platform, world.room.device_id, LOAD_COMMAND)
    assert [args_of(c)["version"] for c in loads] == [1, 1]
    assert set((await states(platform, world, face.id)).values()) == {"queued"}


@pytest.mark.req("R17", "R2")
async def test_faces_offline_codes_and_fingerprints_over_http(
    platform: Platform, clock: FixedClock, world: AccessWorld, client: httpx.AsyncClient
) -> None:
    await enrolled(platform)
    pm = await manager(platform, clock, world.a.admin, "pm-a")
    headers = await stepped_up(client, clock, pm)
    body = {
        "subject_id": SUBJECT,
        "person_type": "tenant",
        "doors": {"device_ids": [world.room.device_id]},
        "valid_until": (clock.now() + timedelta(days=30)).isoformat(),
    }
    grant = (await client.post(f"{BASE}/grants", json=body, headers=headers)).json()
    issue = f"{BASE}/grants/{grant['id']}/credentials"

    finger = await client.post(issue, json={"kind": "fingerprint"}, headers=headers)
    assert (finger.status_code, code_of(finger)) == (422, "credential_unsupported")
    face = await client.post(issue, json={"kind": "face"}, headers=headers)
    assert face.status_code == 201, face.text
    assert face.json()["credential"]["kind"] == "face"
    offline = {"kind": "offline", "device_id": world.room.device_id, "offline_kind": "one_time"}
    issued = await client.post(issue, json=offline, headers=headers)
    assert issued.status_code == 201, issued.text
    code, meta = issued.json()["passcode"], issued.json()["offline"]
    assert len(code) in (10, 12, 14, 16)
    assert (meta["kind"], meta["epoch"]) == ("one_time", 0)
    cred_id = issued.json()["credential"]["id"]
    shown = await client.get(f"{BASE}/credentials/{cred_id}", headers=headers)
    assert code not in shown.text  # shown once, at issue only
    assert shown.json()["offline"]["serial"] == meta["serial"]  # its metadata stays visible
    revoked = await client.post(f"{BASE}/credentials/{cred_id}/revoke", json={}, headers=headers)
    assert revoked.status_code == 200, revoked.text
    assert set(revoked.json()["clear_codes"]) == {world.room.device_id}
    reset = await client.post(
        f"{BASE}/locks/{world.room.device_id}/offline-reset", json={}, headers=headers
    )
    assert reset.status_code == 200, reset.text
    assert reset.json()["epoch"] == 1
    foreign = await client.post(
        f"{BASE}/locks/{world.other.device_id}/offline-reset", json={}, headers=headers
    )
    assert (foreign.status_code, code_of(foreign)) == (404, "not_found")

    clock.advance(seconds=600)  # the step-up is no longer recent
    late = await client.post(issue, json={"kind": "face"}, headers=headers)
    assert (late.status_code, code_of(late)) == (403, "second_factor_required")


async def test_a_lock_offline_past_the_offer_gets_it_again_and_an_ended_grant_drops_the_face(
    platform: Platform, clock: FixedClock, world: AccessWorld
) -> None:
    await enrolled(platform)
    grant = await grant_for(platform, world)
    async with platform.db.transaction() as session:
        face = await CredentialService(platform, session).issue_face(ACTOR, world.org_a, grant.id)
    clock.advance(hours=2)  # the room's lock was offline all along: the 1-hour offer ran out
    async with platform.db.transaction() as session:
        await CommandService(platform, session).expire_due()
    async with platform.db.transaction() as session:
        assert await Deliveries(platform, session).reconcile(world.room.device_id) == 1
    loads = await commands_of(platform, world.room.device_id, LOAD_COMMAND)
    assert [c.status for c in loads] == ["expired", "queued"]
    assert args_of(loads[-1]) == {"subject": SUBJECT, "version": 1}
    await ack(platform, world.room.device_id, loads[-1].id, None)
    assert (await states(platform, world, face.id))[world.room.device_id] == "accepted"

    async with platform.db.transaction() as session:
        await GrantService(platform, session).revoke(ACTOR, world.org_a, grant.id)
    (drop,) = await commands_of(platform, world.room.device_id, DROP_COMMAND)
    assert args_of(drop) == {"subject": SUBJECT}
    assert (await states(platform, world, face.id))[world.room.device_id] == "removing"


@pytest.mark.req("L4", "L5", "L8", "F2")
async def test_withdrawing_face_consent_drops_the_face_from_every_lock(
    platform: Platform, world: AccessWorld
) -> None:
    await publish(platform, face_notice(), org=world.org_a)
    await record(
        platform,
        org=world.org_a,
        subject_id=SUBJECT,
        kind="face_recognition",
        version=1,
        purpose="lock_credential_issue",
        action="given",
    )
    grant = await grant_for(platform, world)
    await enrolled(platform)
    async with platform.db.transaction() as session:
        face = await CredentialService(platform, session).issue_face(ACTOR, world.org_a, grant.id)
    room, entrance = world.room.device_id, world.entrance.device_id
    (load,) = await commands_of(platform, room, LOAD_COMMAND)
    await ack(platform, room, load.id, None)

    await record(
        platform,
        org=world.org_a,
        subject_id=SUBJECT,
        kind="face_recognition",
        version=1,
        purpose="lock_credential_issue",
        action="withdrawn",
        channel="app",
    )
    # The same commit ended the face credential: both locks (one took the offer, the other may
    # still get it) are told to drop the face, and the template itself is revoked.
    async with platform.db.transaction() as session:
        ended = await CredentialService(platform, session).get(world.org_a, face.id)
    assert (ended.status, ended.end_reason) == ("revoked", "consent_withdrawn")
    (drop,) = await commands_of(platform, room, DROP_COMMAND)
    assert args_of(drop) == {"subject": SUBJECT}
    assert (await states(platform, world, face.id))[room] == "removing"
    assert len(await commands_of(platform, entrance, DROP_COMMAND)) == 1
    async with platform.db.transaction() as session:
        with pytest.raises(AnjuError):
            await BiometricService(platform, session).require_template(SUBJECT)
