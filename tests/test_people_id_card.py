"""ID-card reader registration: the chip's data and photo, a live capture compared 1:1 through
the biometrics engine; the photo is used in memory and discarded — nothing of it (or of the
live image) reaches a file, the database or a log."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from anju.biometrics.service import BiometricService
from anju.face.engine import FaceEngine
from anju.kit.clock import FixedClock
from anju.people.models import IdentityVerification
from anju.people.registration import Registrar
from anju.people.service import Actor
from anju.people.verification.base import IdCardCheck
from anju.platform import Platform
from tests.support import face_derive as derive
from tests.support.accounts import login_token, make_admin, make_member_with_role
from tests.support.face_images import FacePhotos
from tests.support.http import api_client, bearer, code_of
from tests.support.image_residue import (
    find_residue,
    private_tempdir,
    residue_patterns,
    scan_for_residue,
    watch_file_writes,
)
from tests.support.people import consenting_subject, people
from tests.support.plaintext_scan import platform_storage_files

DESK = Actor("account:desk-1", "org-1")


@pytest.mark.slow
@pytest.mark.req("N2", "N3", "R9", "R10", "L7", "L12", "F2")
async def test_reader_photo_matches_live_face_and_is_discarded(
    platform: Platform,
    face_engine: FaceEngine,
    face_photos: FacePhotos,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    photo = derive.jpeg(derive.scaled(face_photos["obama.jpg"], 0.4), quality=80)
    live = face_photos["obama3.jpg"]
    private_tmp = private_tempdir(tmp_path, monkeypatch)
    guest = people(1)[0]
    with watch_file_writes() as writes:
        async with platform.db.transaction() as session:
            face = BiometricService(platform, session, engine=face_engine)
            result = await Registrar(platform, session, face=face).register(
                DESK, guest, IdCardCheck(photo=photo, live=live, device="reader-lobby")
            )
    assert (result.outcome, result.face_decision) == ("registered", "match")
    assert writes.events == []
    assert list(private_tmp.iterdir()) == []
    async with platform.db.transaction() as session:
        kept = await session.get(IdentityVerification, result.verification_id)
    assert kept is not None
    assert kept.method == "id_card_reader"
    assert json.loads(kept.statement)["face"] == "match"

    patterns = {
        **residue_patterns(photo, derive.pixels(photo)),
        **{f"live-{k}": v for k, v in residue_patterns(live, derive.pixels(live)).items()},
    }
    stored = platform_storage_files(platform.settings.resolved_database_url, tmp_path)
    assert scan_for_residue([*stored, platform.settings.data_dir], patterns) == []
    assert find_residue(caplog.text.encode(), patterns) == []


@pytest.mark.slow
@pytest.mark.req("N2", "R10")
async def test_someone_else_in_front_of_the_reader_is_rejected(
    platform: Platform, face_engine: FaceEngine, face_photos: FacePhotos
) -> None:
    guest = people(1)[0]
    async with platform.db.transaction() as session:
        face = BiometricService(platform, session, engine=face_engine)
        result = await Registrar(platform, session, face=face).register(
            DESK,
            guest,
            IdCardCheck(photo=face_photos["obama.jpg"], live=face_photos["biden.jpg"]),
        )
    assert (result.outcome, result.reason, result.person_id) == (
        "rejected",
        "face_no_match",
        None,
    )


@pytest.mark.slow
@pytest.mark.req("N2", "N3", "R10", "F2")
async def test_reader_registration_over_http(
    platform: Platform, clock: FixedClock, face_engine: FaceEngine, face_photos: FacePhotos
) -> None:
    admin = await make_admin(platform)
    admin_token = await login_token(platform, admin.login)
    desk = bearer(
        await make_member_with_role(platform, clock, admin, admin_token, "desk", "front_desk")
    )
    guest = people(1)[0]
    body = {
        "document_number": guest.document_number,
        "name": guest.name,
        "address": guest.address,
        "photo": base64.b64encode(face_photos["obama.jpg"]).decode(),
        "live": base64.b64encode(face_photos["obama3.jpg"]).decode(),
        "device": "reader-lobby",
        "subject_id": await consenting_subject(platform, admin.org_id),
    }
    async with api_client(platform) as client:
        r = await client.post("/api/v1/people/id-card", json=body, headers=desk)
        assert r.status_code == 201, r.text
        assert (r.json()["outcome"], r.json()["face_decision"]) == ("registered", "match")
        other = {**body, "document_number": people(2)[1].document_number}
        other["subject_id"] = await consenting_subject(platform, admin.org_id)
        other["live"] = base64.b64encode(face_photos["biden.jpg"]).decode()
        r = await client.post("/api/v1/people/id-card", json=other, headers=desk)
        assert (r.status_code, r.json()["outcome"]) == (200, "rejected")
        r = await client.post(
            "/api/v1/people/id-card", json={**body, "photo": "not base64!"}, headers=desk
        )
        assert (r.status_code, code_of(r)) == (422, "invalid_input")
