"""Online registration (N2): the person's ID photo against live frames that answered a liveness
challenge (the biometrics API), then a registration naming that face check. The check is
usable once, by the caller who made it, for 10 minutes, and only if liveness passed."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import numpy as np
import pytest

from anju.face.engine import FaceEngine
from anju.face.liveness import Action
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support import face_derive as derive
from tests.support.accounts import login_token, make_admin, make_member_with_role
from tests.support.face_frames import HOPPER_BOX, frame_json, performance, portrait
from tests.support.face_images import FacePhotos
from tests.support.http import api_client, bearer, code_of
from tests.support.people import consenting_subject, people


async def face_check(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    clock: FixedClock,
    live: tuple[np.ndarray, Any],
    document: bytes,
) -> dict[str, Any]:
    """A remote document check with liveness, as an app would make it."""
    r = await client.post(
        "/api/v1/biometrics/challenges", json={"purpose": "document_check"}, headers=headers
    )
    assert r.status_code == 201, r.text
    challenge = r.json()
    image, face = live
    frames = performance(image, face, [Action(a) for a in challenge["actions"]], start_ms=9_000)
    clock.advance(seconds=5)
    body = {
        "challenge_id": challenge["id"],
        "frames": [frame_json(f) for f in frames],
        "document": base64.b64encode(document).decode(),
    }
    r = await client.post("/api/v1/biometrics/document-checks", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.mark.slow
@pytest.mark.req("N2", "N3", "F4", "R10")
async def test_online_registration_uses_a_live_face_check_once(
    platform: Platform, clock: FixedClock, face_engine: FaceEngine, face_photos: FacePhotos
) -> None:
    admin = await make_admin(platform)
    admin_token = await login_token(platform, admin.login)
    desk = bearer(
        await make_member_with_role(platform, clock, admin, admin_token, "desk", "front_desk")
    )
    other_desk = bearer(
        await make_member_with_role(platform, clock, admin, admin_token, "desk2", "front_desk")
    )
    image = portrait(face_photos["grace_hopper.jpg"], HOPPER_BOX)
    hopper = (image, face_engine.detector.detect(image)[0])
    first, second, third = people(3)
    subjects = {
        g.document_number: await consenting_subject(platform, admin.org_id) for g in people(3)
    }

    def body(guest: Any, capture_id: str) -> dict[str, Any]:
        return {
            "document_type": guest.document_type,
            "document_number": guest.document_number,
            "name": guest.name,
            "method": "online_face_check",
            "face_capture_id": capture_id,
            "subject_id": subjects[guest.document_number],
        }

    async with api_client(platform) as client:
        matched = await face_check(
            client, desk, clock, hopper, derive.jpeg(face_photos["grace_hopper.jpg"], quality=85)
        )
        assert matched["decision"] == "match"
        capture_id = matched["capture_id"]

        r = await client.post("/api/v1/people", json=body(first, capture_id), headers=other_desk)
        assert (r.status_code, code_of(r)) == (422, "face_check_unusable")  # not their check
        r = await client.post("/api/v1/people", json=body(first, capture_id), headers=desk)
        assert r.status_code == 201, r.text
        assert (r.json()["outcome"], r.json()["face_decision"]) == ("registered", "match")
        r = await client.post("/api/v1/people", json=body(second, capture_id), headers=desk)
        assert (r.status_code, code_of(r)) == (422, "face_check_unusable")  # used once

        mismatch = await face_check(client, desk, clock, hopper, face_photos["obama.jpg"])
        assert mismatch["decision"] == "no_match"
        r = await client.post(
            "/api/v1/people", json=body(second, mismatch["capture_id"]), headers=desk
        )
        assert (r.status_code, r.json()["outcome"], r.json()["reason"]) == (
            200,
            "rejected",
            "face_no_match",
        )

        late = await face_check(
            client, desk, clock, hopper, derive.jpeg(face_photos["grace_hopper.jpg"], quality=85)
        )
        clock.advance(seconds=11 * 60)
        r = await client.post("/api/v1/people", json=body(third, late["capture_id"]), headers=desk)
        assert (r.status_code, code_of(r)) == (422, "face_check_unusable")  # stale
        r = await client.post("/api/v1/people", json=body(third, "0" * 32), headers=desk)
        assert (r.status_code, code_of(r)) == (422, "face_check_unusable")  # unknown
