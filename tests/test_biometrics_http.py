"""Remote face checks over HTTP (F8): the platform issues a liveness challenge, the client sends
the frames answering it (and the document photo), the platform checks liveness, compares 1:1,
logs the capture and keeps nothing else. Single use, expiry, order, capabilities, hostile input.

Frames are depth warps of a real package photo (tests/support/face_frames.py). On SQLite and
PostgreSQL (``platform`` fixture).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from anju.audit.models import AuditEntry
from anju.biometrics import remote
from anju.biometrics.models import FaceCapture, LivenessChallenge
from anju.biometrics.service import BiometricService, Operator
from anju.face.detector import Detection
from anju.face.engine import FaceEngine
from anju.face.liveness import Action
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support import face_derive as derive
from tests.support.accounts import Admin, login_token, make_admin
from tests.support.face_frames import HOPPER_BOX, frame_json, performance, portrait
from tests.support.face_images import FacePhotos
from tests.support.http import api_client, bearer, code_of, front_desk_headers
from tests.support.image_residue import (
    find_residue,
    private_tempdir,
    residue_patterns,
    scan_for_residue,
    watch_file_writes,
)
from tests.support.plaintext_scan import platform_storage_files

pytestmark = pytest.mark.req("F8", "F4", "L7", "L8", "R9", "R10")

BASE = "/api/v1/biometrics"
Hopper = tuple[np.ndarray, Detection]


@pytest.fixture(scope="module")
def hopper(face_photos: FacePhotos, face_engine: FaceEngine) -> Hopper:
    image = portrait(face_photos["grace_hopper.jpg"], HOPPER_BOX)
    return image, face_engine.detector.detect(image)[0]


_performed: dict[tuple[str, ...], list[dict[str, Any]]] = {}


def performed(hopper: Hopper, actions: list[str]) -> list[dict[str, Any]]:
    """The frames (as a client sends them) of Grace Hopper doing ``actions``, on a client clock
    that has nothing to do with the platform's."""
    key = tuple(actions)
    if key not in _performed:
        image, face = hopper
        frames = performance(image, face, [Action(a) for a in actions], start_ms=9_000)
        _performed[key] = [frame_json(f) for f in frames]
    return _performed[key]


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(platform) as c:
        yield c


@pytest.fixture
async def admin(platform: Platform) -> Admin:
    return await make_admin(platform, login="sa-bio", org="Hotel A")


@pytest.fixture
async def desk(platform: Platform, clock: FixedClock, admin: Admin) -> dict[str, str]:
    """Headers of a front-desk clerk (holds biometrics.verify)."""
    return await front_desk_headers(platform, clock, admin, "desk-1")


async def new_challenge(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{BASE}/challenges", json={"purpose": "document_check", **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def document_check_body(
    challenge: dict[str, Any], frames: list[dict[str, Any]], document: bytes, **extra: Any
) -> dict[str, Any]:
    return {
        "challenge_id": challenge["id"],
        "frames": frames,
        "document": base64.b64encode(document).decode(),
        **extra,
    }


def reason_codes(result: dict[str, Any], what: str) -> list[str]:
    return [r["code"] for r in result["reasons"].get(what, [])]


async def captures(platform: Platform) -> list[FaceCapture]:
    async with platform.db.transaction() as session:
        rows = await session.execute(select(FaceCapture).order_by(FaceCapture.at, FaceCapture.id))
        return list(rows.scalars())


async def audit_actions(platform: Platform, prefix: str = "biometric.") -> list[tuple[str, str]]:
    async with platform.db.transaction() as session:
        rows = await session.execute(
            select(AuditEntry.action, AuditEntry.outcome)
            .where(AuditEntry.action.like(f"{prefix}%"))
            .order_by(AuditEntry.leaf_index)
        )
        return [(a, o) for a, o in rows]


async def test_a_live_person_matching_the_document_is_verified_and_nothing_is_kept(
    platform: Platform,
    clock: FixedClock,
    client: httpx.AsyncClient,
    desk: dict[str, str],
    hopper: Hopper,
    face_photos: FacePhotos,
    face_engine: FaceEngine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    challenge = await new_challenge(client, desk, subject_id="guest-1")
    assert len(challenge["actions"]) == 3
    assert all(" / " in p for p in challenge["prompts"])
    assert challenge["expires_at_ms"] - challenge["issued_at_ms"] == 60_000
    frames = performed(hopper, challenge["actions"])
    document = derive.jpeg(face_photos["grace_hopper.jpg"], quality=85)
    body = document_check_body(
        challenge, frames, document, subject_id="guest-1", device="desk-tablet-2"
    )
    clock.advance(seconds=5)  # the person performs the movements

    private_tmp = private_tempdir(tmp_path, monkeypatch)
    caplog.set_level(logging.DEBUG)
    with watch_file_writes() as writes:
        response = await client.post(f"{BASE}/document-checks", json=body, headers=desk)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["decision"], result["metric"], result["reasons"]) == (
        "match",
        "embedding_distance",
        {},
    )
    assert result["distance"] < result["threshold"] == 0.6
    assert result["liveness"]["live"] is True
    assert result["liveness"]["performed"] == challenge["actions"]

    # Nothing of the document or of any frame was written anywhere.
    assert writes.events == []
    assert list(private_tmp.iterdir()) == []
    first = base64.b64decode(frames[0]["image"])
    patterns = {
        **residue_patterns(document, derive.pixels(document)),
        **{f"frame-{k}": v for k, v in residue_patterns(first, derive.pixels(first)).items()},
        "embedding": face_engine.sample(document).embedding[:4].tobytes(),
    }
    stored = platform_storage_files(platform.settings.resolved_database_url, tmp_path)
    assert scan_for_residue([*stored, platform.settings.data_dir], patterns) == []
    assert find_residue(caplog.text.encode(), patterns) == []

    (capture,) = await captures(platform)
    assert (capture.kind, capture.outcome, capture.liveness, capture.reasons) == (
        "remote_document_check",
        "match",
        "passed",
        "",
    )
    assert (capture.id, capture.device, capture.subject_id) == (
        result["capture_id"],
        "desk-tablet-2",
        "guest-1",
    )
    assert capture.operator.startswith("account:")
    assert await audit_actions(platform) == [
        ("biometric.challenge_issued", "success"),
        ("biometric.remote_document_check", "success"),
    ]


async def test_a_challenge_is_used_once_even_by_concurrent_requests(
    platform: Platform,
    clock: FixedClock,
    client: httpx.AsyncClient,
    desk: dict[str, str],
    hopper: Hopper,
    face_photos: FacePhotos,
) -> None:
    challenge = await new_challenge(client, desk)
    body = document_check_body(
        challenge, performed(hopper, challenge["actions"]), face_photos["grace_hopper.jpg"]
    )
    clock.advance(seconds=5)
    both = await asyncio.gather(
        *(client.post(f"{BASE}/document-checks", json=body, headers=desk) for _ in range(2))
    )
    results = sorted((r.json() for r in both), key=lambda r: r["decision"])
    assert [r["decision"] for r in results] == ["match", "refused"]
    assert reason_codes(results[1], "challenge") == ["liveness_challenge_used"]
    assert results[1]["liveness"] is None  # refused before a single frame was decoded

    replayed = await client.post(f"{BASE}/document-checks", json=body, headers=desk)
    assert replayed.status_code == 200
    assert reason_codes(replayed.json(), "challenge") == ["liveness_challenge_used"]
    logged = [(c.outcome, c.reasons, c.liveness) for c in await captures(platform)]
    assert sorted(logged) == [
        ("match", "", "passed"),
        ("refused", "liveness_challenge_used", "not_checked"),
        ("refused", "liveness_challenge_used", "not_checked"),
    ]


async def test_expired_unknown_and_misused_challenges_are_refused(
    platform: Platform,
    clock: FixedClock,
    client: httpx.AsyncClient,
    admin: Admin,
    desk: dict[str, str],
    hopper: Hopper,
    face_photos: FacePhotos,
) -> None:
    document = face_photos["grace_hopper.jpg"]

    async def refusal(
        challenge: dict[str, Any], path: str = "document-checks", **extra: Any
    ) -> list[str]:
        frames = performed(hopper, challenge["actions"])
        body = {**document_check_body(challenge, frames, document), **extra}
        if path == "template-checks":
            body.pop("document")
        response = await client.post(f"{BASE}/{path}", json=body, headers=desk)
        assert response.status_code == 200, response.text
        assert response.json()["decision"] == "refused"
        return reason_codes(response.json(), "challenge")

    late = await new_challenge(client, desk)
    clock.advance(seconds=61)
    assert await refusal(late) == ["liveness_challenge_expired"]
    assert await refusal({**late, "id": "0" * 32}) == ["liveness_challenge_unknown"]

    # Bound to the subject and the purpose it was issued for.
    for_guest = await new_challenge(client, desk, subject_id="guest-1")
    assert await refusal(for_guest, subject_id="guest-2") == ["liveness_challenge_unknown"]
    plain = await new_challenge(client, desk)
    assert await refusal(plain, "template-checks", subject_id="guest-1") == [
        "liveness_challenge_unknown"
    ]

    # Bound to the principal: another clerk can neither use it nor use it up.
    other = await front_desk_headers(platform, clock, admin, "desk-2")
    mine = await new_challenge(client, desk)
    clock.advance(seconds=5)
    frames = performed(hopper, mine["actions"])
    stolen = await client.post(
        f"{BASE}/document-checks", json=document_check_body(mine, frames, document), headers=other
    )
    assert reason_codes(stolen.json(), "challenge") == ["liveness_challenge_unknown"]
    owner = await client.post(
        f"{BASE}/document-checks", json=document_check_body(mine, frames, document), headers=desk
    )
    assert owner.json()["decision"] == "match"


async def test_liveness_failures_and_a_different_person_are_refused(
    platform: Platform,
    clock: FixedClock,
    client: httpx.AsyncClient,
    desk: dict[str, str],
    hopper: Hopper,
    face_photos: FacePhotos,
) -> None:
    document = face_photos["grace_hopper.jpg"]

    async def check(
        frames: Callable[[dict[str, Any]], list[dict[str, Any]]],
        doc: bytes = document,
        wait: int = 5,
    ) -> dict[str, Any]:
        challenge = await new_challenge(client, desk)
        clock.advance(seconds=wait)
        body = document_check_body(challenge, frames(challenge), doc)
        response = await client.post(f"{BASE}/document-checks", json=body, headers=desk)
        assert response.status_code == 200, response.text
        return dict(response.json())

    reversed_order = await check(lambda c: performed(hopper, c["actions"][::-1]))
    assert reason_codes(reversed_order, "liveness") == ["liveness_wrong_order"]
    assert reversed_order["liveness"]["live"] is False

    def frozen(challenge: dict[str, Any]) -> list[dict[str, Any]]:
        first = performed(hopper, challenge["actions"])[0]
        return [{**first, "at_ms": first["at_ms"] + 150 * i} for i in range(12)]

    still = await check(frozen)  # one injected frame, sent again and again
    assert reason_codes(still, "liveness") == ["liveness_repeated_frames"]

    # A recording longer than the time since the challenge was issued cannot answer it.
    early = await check(lambda c: performed(hopper, c["actions"]), wait=1)
    assert reason_codes(early, "liveness") == ["liveness_bad_timing"]

    other = await check(lambda c: performed(hopper, c["actions"]), doc=face_photos["biden.jpg"])
    assert (other["decision"], other["reasons"]) == ("no_match", {})
    assert other["distance"] > other["threshold"]

    not_a_photo = await check(lambda c: performed(hopper, c["actions"]), doc=b"GIF89a....")
    assert reason_codes(not_a_photo, "document") == ["unsupported_format"]

    outcomes = [(c.kind, c.outcome, c.liveness) for c in await captures(platform)]
    assert outcomes == [
        ("remote_document_check", "refused", "failed"),
        ("remote_document_check", "refused", "failed"),
        ("remote_document_check", "refused", "failed"),
        ("remote_document_check", "no_match", "passed"),
        ("remote_document_check", "refused", "passed"),
    ]


async def test_a_template_check_compares_with_the_protected_template(
    platform: Platform,
    clock: FixedClock,
    client: httpx.AsyncClient,
    desk: dict[str, str],
    hopper: Hopper,
    face_photos: FacePhotos,
    face_engine: FaceEngine,
) -> None:
    missing = await client.post(
        f"{BASE}/challenges",
        json={"purpose": "template_check", "subject_id": "guest-9"},
        headers=desk,
    )
    assert (missing.status_code, code_of(missing)) == (404, "not_found")
    no_subject = await client.post(
        f"{BASE}/challenges", json={"purpose": "template_check"}, headers=desk
    )
    assert (no_subject.status_code, code_of(no_subject)) == (422, "invalid_input")

    async with platform.db.transaction() as session:
        svc = BiometricService(platform, session, engine=face_engine)
        operator = Operator("account:enrolling-clerk", "kiosk-1")
        enrolled = await svc.enrol("guest-9", face_photos["grace_hopper.jpg"], operator)
    assert enrolled.outcome == "enrolled"

    challenge = await new_challenge(client, desk, purpose="template_check", subject_id="guest-9")
    clock.advance(seconds=5)
    body = {
        "challenge_id": challenge["id"],
        "subject_id": "guest-9",
        "frames": performed(hopper, challenge["actions"]),
    }
    response = await client.post(f"{BASE}/template-checks", json=body, headers=desk)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["decision"], result["metric"]) == ("match", "template_hamming")
    assert result["distance"] <= result["threshold"] == 0.115
    logged = [(c.kind, c.outcome, c.liveness) for c in await captures(platform)]
    assert logged[-1] == ("remote_template_check", "match", "passed")


async def test_only_signed_in_holders_of_biometrics_verify_may_check(
    platform: Platform, client: httpx.AsyncClient, admin: Admin, desk: dict[str, str]
) -> None:
    body = {"purpose": "document_check"}
    anonymous = await client.post(f"{BASE}/challenges", json=body)
    assert (anonymous.status_code, code_of(anonymous)) == (401, "unauthenticated")
    # The security administrator holds no PI capability, so no biometrics.verify either.
    admin_headers = bearer(await login_token(platform, admin.login))
    refused = await client.post(f"{BASE}/challenges", json=body, headers=admin_headers)
    assert (refused.status_code, code_of(refused)) == (403, "forbidden")
    check = {
        "challenge_id": "a" * 32,
        "frames": [{"at_ms": 1, "image": "AAAA"}],
        "document": "AAAA",
    }
    refused = await client.post(f"{BASE}/document-checks", json=check, headers=admin_headers)
    assert (refused.status_code, code_of(refused)) == (403, "forbidden")
    assert await audit_actions(platform) == [
        ("biometric.challenge_issued", "denied"),
        ("biometric.remote_document_check", "denied"),
    ]
    assert await captures(platform) == []


async def test_open_challenges_are_limited_and_expired_ones_forgotten(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient, desk: dict[str, str]
) -> None:
    for _ in range(5):
        await new_challenge(client, desk)
    sixth = await client.post(
        f"{BASE}/challenges", json={"purpose": "document_check"}, headers=desk
    )
    assert (sixth.status_code, code_of(sixth)) == (429, "too_many_challenges")
    clock.advance(seconds=61)
    await new_challenge(client, desk)
    async with platform.db.transaction() as session:
        rows = (await session.execute(select(LivenessChallenge))).scalars().all()
    assert len(rows) == 1  # the five expired ones are gone


async def test_bad_requests_get_clear_errors_and_never_reach_the_engine(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient, desk: dict[str, str]
) -> None:
    path = f"{BASE}/document-checks"
    challenge = await new_challenge(client, desk)
    good = {
        "challenge_id": challenge["id"],
        "frames": [{"at_ms": 1, "image": "AAAA"}],
        "document": "AAAA",
    }

    async def error(
        body: Any, content: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[int, str, list[str]]:
        if content is None:
            response = await client.post(path, json=body, headers=desk)
        else:
            headers = {**desk, "content-type": content_type}
            response = await client.post(path, content=content, headers=headers)
        details = response.json()["error"].get("details", {})
        return (
            response.status_code,
            code_of(response),
            [f["path"] for f in details.get("fields", [])],
        )

    assert await error({**good, "document": "not base64!"}) == (
        422,
        "invalid_input",
        ["body.document"],
    )
    assert await error({**good, "frames": [{"at_ms": 1, "image": "AAA"}]}) == (
        422,
        "invalid_input",
        ["body.frames.0.image"],
    )
    assert (await error({**good, "extra": 1}))[:2] == (422, "invalid_input")
    assert (await error({k: v for k, v in good.items() if k != "document"}))[:2] == (
        422,
        "invalid_input",
    )
    assert (await error({**good, "challenge_id": "../x"}))[:2] == (422, "invalid_input")
    assert (await error(None, b"{not json"))[:2] == (
        400,
        "malformed_json",
    )
    assert (await error(None, b"x", "image/jpeg"))[:2] == (
        415,
        "unsupported_media_type",
    )
    # Over the path's 8 MiB limit: refused before the body is read.
    huge = b'{"document":"' + b"A" * (8 * 1024 * 1024) + b'"}'
    assert (await error(None, huge))[:2] == (
        413,
        "payload_too_large",
    )
    # Other paths keep the normal 1 MiB limit.
    big = {"purpose": "document_check", "subject_id": "x" * (2 * 1024 * 1024)}
    response = await client.post(f"{BASE}/challenges", json=big, headers=desk)
    assert (response.status_code, code_of(response)) == (413, "payload_too_large")

    # Within the limit (2.4 MiB) but frames over 256 KiB each: a refusal with its reason.
    noise = np.random.default_rng(1).integers(0, 256, 300 * 1024, dtype=np.uint8).tobytes()
    frames = [{"at_ms": 100 * i, "image": base64.b64encode(noise).decode()} for i in range(6)]
    clock.advance(seconds=5)
    response = await client.post(path, json={**good, "frames": frames}, headers=desk)
    assert response.status_code == 200, response.text
    assert reason_codes(response.json(), "liveness") == ["file_too_large"]
    too_many = await new_challenge(client, desk)
    frames = [{"at_ms": i, "image": "AAAA"} for i in range(91)]
    response = await client.post(
        path, json={**good, "challenge_id": too_many["id"], "frames": frames}, headers=desk
    )
    assert reason_codes(response.json(), "liveness") == ["liveness_too_many_frames"]
    assert sorted(c.reasons for c in await captures(platform)) == [
        "file_too_large",
        "liveness_too_many_frames",
    ]


async def test_checks_beyond_the_in_flight_limit_are_turned_away(
    platform: Platform,
    client: httpx.AsyncClient,
    desk: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    challenge = await new_challenge(client, desk)
    body = {"challenge_id": challenge["id"], "frames": [{"at_ms": 1, "image": "AAAA"}]}
    monkeypatch.setattr(remote, "_in_flight", remote.MAX_IN_FLIGHT)  # the engine is busy
    busy = await client.post(
        f"{BASE}/document-checks", json={**body, "document": "AAAA"}, headers=desk
    )
    assert (busy.status_code, code_of(busy)) == (503, "biometrics_busy")
    monkeypatch.setattr(remote, "_in_flight", 0)
    # The challenge was not used up by the refused request.
    later = await client.post(
        f"{BASE}/document-checks", json={**body, "document": "AAAA"}, headers=desk
    )
    assert reason_codes(later.json(), "liveness") == ["liveness_too_few_frames"]
