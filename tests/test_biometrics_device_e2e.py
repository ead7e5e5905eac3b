"""Face biometrics on devices, end to end (L8e, L9b): reference locks with a camera against the
real gateway on the embedded broker. A kiosk enrols a person (liveness and template made on the
device), the platform seals the template; a room lock receives it and recognises the person at
the door; withdrawing it wipes the lock's copy. No image ever leaves a device, no template is
stored in clear, and a device gets only what an operator offered it. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit.models import AuditEntry
from anju.biometrics.models import FaceCapture, FaceTemplate
from anju.biometrics.service import BiometricService, Operator, shared_engine
from anju.device.lock import LockFirmware
from anju.device.storage import SlotStore
from anju.devices.command_models import DeviceCommand
from anju.face.engine import FaceEngine
from anju.face.template import protect
from anju.gateway.client import BrokerAddress
from anju.gateway.models import DeviceEvent
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.accounts import Admin, login_token, make_admin
from tests.support.device_harness import running
from tests.support.face_camera import Person, PersonCamera
from tests.support.face_frames import HOPPER_BOX, portrait
from tests.support.face_images import FacePhotos
from tests.support.firmware import poll, reference_lock
from tests.support.gateway_env import embedded_broker, running_gateway, wait_until
from tests.support.http import api_client, bearer, code_of, front_desk_headers
from tests.support.image_residue import pixel_patterns, scan_for_residue
from tests.support.mqtt_device import Made, TestDevice, manufacture_registered
from tests.support.plaintext_scan import platform_storage_files

pytestmark = pytest.mark.req("L8", "L9", "L10", "L12", "L13", "L16", "F3", "F4")

BASE = "/api/v1/biometrics"


@pytest.fixture(scope="module")
def hopper(face_photos: FacePhotos, face_engine: FaceEngine) -> Person:
    image = portrait(face_photos["grace_hopper.jpg"], HOPPER_BOX)
    return Person(image, face_engine.detector.detect(image)[0])


@pytest.fixture(scope="module")
def obama(face_photos: FacePhotos, face_engine: FaceEngine) -> Person:
    image = portrait(face_photos["obama.jpg"], (0.3, 0.05, 0.78, 0.45))
    return Person(image, face_engine.detector.detect(image)[0])


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(platform) as c:
        yield c


@pytest.fixture
async def admin(platform: Platform) -> Admin:
    return await make_admin(platform, login="sa-faces", org="Hotel A")


@pytest.fixture
async def desk(platform: Platform, clock: FixedClock, admin: Admin) -> dict[str, str]:
    return await front_desk_headers(platform, clock, admin, "desk")


async def rows(platform: Platform, model: Any) -> list[Any]:
    async with platform.db.transaction() as session:
        return list((await session.execute(select(model))).scalars())


async def offer(
    client: httpx.AsyncClient, headers: dict[str, str], device_id: str, what: str, subject: str
) -> dict[str, Any]:
    response = await client.post(
        f"{BASE}/devices/{device_id}/{what}", json={"subject_id": subject}, headers=headers
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def face_lock(
    made: Made, platform: Platform, address: BrokerAddress, data_dir: Path, camera: PersonCamera
) -> LockFirmware:
    """A reference lock with a camera, using the test session's face engine."""
    engine = shared_engine()
    return reference_lock(made, platform, address, data_dir, camera=camera, face_engine=engine)


def slot_payloads(lock: LockFirmware) -> list[bytes]:
    """What each of the two slots of the lock's face record holds, decrypted."""
    store: SlotStore = lock.faces.store
    return [slot.payload for slot in (store._parse(0), store._parse(1)) if slot is not None]


async def test_enrol_at_a_kiosk_recognise_at_the_door_and_withdraw(
    platform: Platform,
    clock: FixedClock,
    client: httpx.AsyncClient,
    admin: Admin,
    desk: dict[str, str],
    hopper: Person,
    obama: Person,
    face_engine: FaceEngine,
    face_photos: FacePhotos,
    tmp_path: Path,
) -> None:
    kiosk_made, room_made = await manufacture_registered(
        platform, tmp_path, count=2, org_id=admin.org_id
    )
    kiosk_camera = PersonCamera(hopper, clock)
    door_camera = PersonCamera(hopper, clock)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
    ):
        kiosk = face_lock(kiosk_made, platform, broker.address, tmp_path / "kiosk", kiosk_camera)
        room = face_lock(room_made, platform, broker.address, tmp_path / "room", door_camera)
        async with running(kiosk), running(room):
            for m in (kiosk_made, room_made):
                await wait_until(lambda m=m: m.device_id in gateway.ingest.held_devices(), 15)

            # 1. Enrolment at the kiosk: liveness and template made there, sealed here.
            enrolment = await offer(client, desk, kiosk_made.device_id, "enrolments", "guest-1")
            assert (enrolment["name"], enrolment["version"]) == ("bio.enrol", 1)

            async def enrolled(session: AsyncSession) -> bool:
                count = select(func.count()).select_from(FaceTemplate)
                return bool((await session.execute(count)).scalar_one())

            await poll(platform, enrolled, within=60)
            await wait_until(lambda: kiosk.faces.pending == {}, 10)
            assert kiosk.faces.subjects == {"guest-1": 1}
            assert kiosk_camera.captures == 1
            kept = json.loads(slot_payloads(kiosk)[0])["faces"]["guest-1"]
            sent_template = base64.b64decode(kept["tpl"])

            # The platform's sealed template is the person's: a new photo of her matches it.
            async with platform.db.transaction() as session:
                svc = BiometricService(platform, session, engine=face_engine)
                checked = await svc.check_template(
                    "guest-1", face_photos["grace_hopper.jpg"], Operator("account:t", "t")
                )
            assert checked.decision == "match"

            # 2. The room lock receives the template and opens for her, only for her.
            loaded = await offer(client, desk, room_made.device_id, "templates", "guest-1")
            assert (loaded["name"], loaded["version"]) == ("bio.load", 1)
            await wait_until(lambda: room.faces.subjects == {"guest-1": 1}, 20)
            assert room.locked
            verdict = await room.face_unlock()
            assert (verdict.matched, verdict.subject) == (True, "guest-1")
            assert not room.locked
            room.set_locked(True, by="test")

            door_camera.person = obama
            stranger = await room.face_unlock()
            assert (stranger.matched, stranger.subject, stranger.reasons) == (False, None, [])
            door_camera.person, door_camera.still = hopper, True
            photo = await room.face_unlock()
            assert not photo.matched
            assert [r.value for r in photo.reasons] == ["liveness_repeated_frames"]
            assert room.locked

            async def logged(session: AsyncSession) -> bool:
                query = select(func.count()).where(FaceCapture.kind == "device_verify")
                return (await session.execute(query)).scalar_one() == 3

            await poll(platform, logged)

            # 3. Check-out: the lock wipes her template and key from both slots.
            before = [p for p in slot_payloads(room) if b"guest-1" in p]
            assert before
            dropped = await offer_drop(client, desk, room_made.device_id, "guest-1")
            assert dropped["name"] == "bio.drop"
            await wait_until(lambda: room.faces.subjects == {}, 20)
            assert all(b"guest-1" not in p for p in slot_payloads(room))
            assert len(slot_payloads(room)) == 2

    captures = sorted(
        (c.kind, c.outcome, c.liveness, c.subject_id, c.reasons)
        for c in await rows(platform, FaceCapture)
        if c.operator.startswith("device:")
    )
    assert captures == [
        ("device_enrol", "enrolled", "passed", "guest-1", ""),
        ("device_verify", "match", "passed", "guest-1", ""),
        ("device_verify", "no_match", "passed", None, ""),
        ("device_verify", "refused", "failed", None, "liveness_repeated_frames"),
    ]
    async with platform.db.transaction() as session:
        audit = await session.execute(select(AuditEntry.action, AuditEntry.details))
        actions = [(a, json.loads(d)) for a, d in audit]
    names = [a for a, _ in actions]
    for expected in (
        "biometric.device.enrol",
        "biometric.device.load",
        "biometric.device.key_sent",
        "biometric.device.template_sent",
        "biometric.device.drop",
        "biometric.device_enrol",
        "biometric.device_verify",
    ):
        assert expected in names, expected
    purposes = [d.get("purpose") for a, d in actions if a == "pi.decrypted"]
    assert "lock_credential_issue" in purposes  # opened only to send it to the room lock

    # The template the kiosk sent is nowhere in clear (not in device_events, not anywhere in
    # the database), and no pixel of any frame the cameras took left the devices.
    patterns = {f"template[{i}]": sent_template[i : i + 24] for i in (1, 40, 100)}
    for n, frame in enumerate(kiosk_camera.first_frames + door_camera.first_frames):
        patterns.update(pixel_patterns(frame, f"frame{n}"))
    stored = platform_storage_files(platform.settings.resolved_database_url, tmp_path)
    assert scan_for_residue([*stored, platform.settings.data_dir], patterns) == []
    kinds = {e.kind for e in await rows(platform, DeviceEvent)}
    # Face unlocks are also signed access.unlock records: subject id and result, no biometrics.
    assert kinds == {"lock.locked", "lock.unlocked", "access.unlock"}


async def offer_drop(
    client: httpx.AsyncClient, headers: dict[str, str], device_id: str, subject: str
) -> dict[str, Any]:
    response = await client.delete(
        f"{BASE}/devices/{device_id}/templates/{subject}", headers=headers
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


async def test_a_refused_enrolment_stores_nothing_and_is_logged(
    platform: Platform,
    clock: FixedClock,
    client: httpx.AsyncClient,
    admin: Admin,
    desk: dict[str, str],
    hopper: Person,
    face_engine: FaceEngine,
    tmp_path: Path,
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path, org_id=admin.org_id)
    camera = PersonCamera(hopper, clock, still=True)  # a photo held up to the kiosk
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
    ):
        kiosk = face_lock(made, platform, broker.address, tmp_path / "kiosk", camera)
        async with running(kiosk):
            await wait_until(lambda: made.device_id in gateway.ingest.held_devices(), 15)
            await offer(client, desk, made.device_id, "enrolments", "guest-2")

            async def logged(session: AsyncSession) -> bool:
                query = select(func.count()).select_from(FaceCapture)
                return bool((await session.execute(query)).scalar_one())

            await poll(platform, logged, within=60)
            assert kiosk.faces.subjects == {}
    (capture,) = await rows(platform, FaceCapture)
    assert (capture.kind, capture.outcome, capture.liveness, capture.subject_id) == (
        "device_enrol",
        "refused",
        "failed",
        "guest-2",
    )
    assert capture.reasons == "liveness_repeated_frames"
    assert await rows(platform, FaceTemplate) == []


async def test_a_device_gets_only_what_was_offered_to_it(
    platform: Platform,
    client: httpx.AsyncClient,
    admin: Admin,
    desk: dict[str, str],
    face_engine: FaceEngine,
    face_photos: FacePhotos,
    tmp_path: Path,
) -> None:
    """A device speaking the protocol by hand (it could be compromised): unoffered fetches and
    templates are refused; resends are acknowledged once; a stale version is refused."""
    (made,) = await manufacture_registered(platform, tmp_path, org_id=admin.org_id)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
    ):
        device = TestDevice(made, platform, broker.address)
        await device.connect()
        await device.handshake()
        await wait_until(lambda: made.device_id in gateway.ingest.held_devices(), 15)

        device.send({"t": "bio_get", "subject": "guest-3", "version": 1})
        answer = await device.receive()
        assert (answer["t"], answer["key"], answer["code"]) == ("bio_data", None, "bio_not_offered")

        tpl = base64.b64encode(
            bytes(protect(face_engine.sample(face_photos["obama.jpg"]).embedding, bytes(32)))
        ).decode()
        planted = {
            "t": "bio_template",
            "id": "t1",
            "at": 0,
            "subject": "guest-3",
            "version": 1,
            "tpl": tpl,
        }
        device.send(planted)
        ack = await _next(device, "bio_ack")
        assert (ack["id"], ack["ok"], ack["code"]) == ("t1", False, "bio_not_offered")
        assert await rows(platform, FaceTemplate) == []

        # An operator offers an enrolment: now the key comes, and the template is kept once.
        await offer(client, desk, made.device_id, "enrolments", "guest-3")
        command = await _next(device, "cmd")
        assert (command["name"], command["args"]) == (
            "bio.enrol",
            {"subject": "guest-3", "version": 1},
        )
        device.send({"t": "bio_get", "subject": "guest-3", "version": 1})
        data = await _next(device, "bio_data")
        assert data["code"] is None
        assert data["tpl"] is None  # an enrolment gets the key only
        async with platform.db.transaction() as session:
            key = BiometricService(platform, session).template_key("guest-3", 1)
        assert base64.b64decode(data["key"]) == key
        device.send({"t": "bio_get", "subject": "guest-3", "version": 2})  # not what was offered
        assert (await _next(device, "bio_data"))["code"] == "bio_not_offered"

        device.send({**planted, "id": "t2"})
        assert (await _next(device, "bio_ack"))["ok"] is True
        device.send({**planted, "id": "t2"})  # resent (its ack was lost): acknowledged again
        assert (await _next(device, "bio_ack"))["ok"] is True
        device.send({**planted, "id": "t3"})  # another template for the same version
        assert (await _next(device, "bio_ack"))["code"] == "bio_version_conflict"
        bad = {**planted, "id": "t4", "tpl": base64.b64encode(b"\x07" + bytes(128)).decode()}
        device.send(bad)
        assert (await _next(device, "bio_ack"))["code"] == "bio_malformed"

        result = {
            "t": "bio_result",
            "id": "r1",
            "at": 0,
            "kind": "verify",
            "subject": None,
            "version": None,
            "result": "no_match",
            "liveness": "passed",
            "reasons": [],
        }
        device.send(result)
        device.send(result)
        assert [(await _next(device, "bio_ack"))["ok"] for _ in range(2)] == [True, True]
        await device.close()
        assert gateway.counters["bio_not_offered"] == 2
    templates = await rows(platform, FaceTemplate)
    assert [(t.subject_id, t.version) for t in templates] == [("guest-3", 1)]
    logged = sorted((c.kind, c.outcome) for c in await rows(platform, FaceCapture))
    assert logged == [("device_enrol", "enrolled"), ("device_verify", "no_match")]


async def _next(device: TestDevice, kind: str) -> dict[str, Any]:
    """The next downlink message of ``kind`` (others, e.g. commands sent meanwhile, skipped)."""
    while True:
        message = await device.receive(within=15)
        if message["t"] == kind:
            return message


async def test_offers_need_biometrics_enrol_and_stay_in_the_organisation(
    platform: Platform,
    clock: FixedClock,
    client: httpx.AsyncClient,
    admin: Admin,
    desk: dict[str, str],
    tmp_path: Path,
) -> None:
    (mine,) = await manufacture_registered(platform, tmp_path, org_id=admin.org_id)
    (theirs,) = await manufacture_registered(platform, tmp_path)
    body = {"subject_id": "guest-4"}
    path = f"{BASE}/devices/{mine.device_id}/enrolments"
    assert (await client.post(path, json=body)).status_code == 401
    admin_headers = bearer(await login_token(platform, admin.login))
    refused = await client.post(path, json=body, headers=admin_headers)
    assert (refused.status_code, code_of(refused)) == (403, "forbidden")
    other = await client.post(
        f"{BASE}/devices/{theirs.device_id}/enrolments", json=body, headers=desk
    )
    assert other.status_code == 404
    odd = await client.post(path, json={"subject_id": "guest 4/ü"}, headers=desk)
    assert (odd.status_code, code_of(odd)) == (422, "invalid_input")
    unknown = await client.post(
        f"{BASE}/devices/{mine.device_id}/templates", json=body, headers=desk
    )
    assert unknown.status_code == 404  # no template in force to send
    assert await rows(platform, DeviceCommand) == []
    async with platform.db.transaction() as session:
        denied = await session.execute(
            select(AuditEntry.action).where(AuditEntry.outcome == "denied")
        )
        assert list(denied.scalars()) == ["biometric.device.enrol"]
