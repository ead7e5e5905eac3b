"""The notice, consent and retention HTTP API: roles, organisations, bad input (L4–L6, L10)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.accounts import login_token, make_admin, make_member_with_role
from tests.support.http import api_client, bearer, code_of

FACE_NOTICE: dict[str, Any] = {
    "kind": "face_recognition",
    "title_zh": "人脸识别单独同意",
    "title_en": "Face recognition (separate consent)",
    "text_zh": "人脸信息仅用于开锁，退房即删除。",
    "text_en": "Used only to unlock; deleted at check-out.",
    "items": [
        {
            "purpose": "lock_credential_issue",
            "categories": ["biometric_template"],
            "required": False,
        }
    ],
}
REGULATOR_NOTICE: dict[str, Any] = {
    "kind": "regulator_reporting",
    "title_zh": "向公安机关报送告知",
    "title_en": "Reporting to the public-security regulator",
    "text_zh": "依法向公安机关报送您的身份信息和开锁记录。",
    "text_en": "Your identity and unlock records are reported to public security as the law asks.",
    "items": [
        {"purpose": "regulator_report", "categories": ["name", "identity_number"], "required": True}
    ],
}


async def _staff(platform: Platform, clock: FixedClock, org: str, prefix: str) -> dict[str, str]:
    """Headers of a data operator, a front-desk clerk and the security admin of ``org``."""
    admin = await make_admin(platform, f"{prefix}-sa", org)
    token = await login_token(platform, admin.login)
    operator = await make_member_with_role(
        platform, clock, admin, token, f"{prefix}-dpo", "data_operator"
    )
    clerk = await make_member_with_role(
        platform, clock, admin, token, f"{prefix}-desk", "front_desk"
    )
    return {"operator": operator, "clerk": clerk, "admin": admin.token}


async def _consent(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> httpx.Response:
    fields = {
        "subject_id": "guest-h1",
        "notice_kind": "face_recognition",
        "notice_version": 1,
        "purpose": "lock_credential_issue",
        "action": "given",
        "channel": "kiosk",
    } | body
    return await client.post("/api/v1/consents", json=fields, headers=headers)


@pytest.mark.req("L4", "L5", "L6", "L7")
async def test_publish_consent_receipt_and_check_over_http(
    platform: Platform, clock: FixedClock
) -> None:
    staff = await _staff(platform, clock, "Org A", "a")
    operator, clerk, admin = (bearer(staff[k]) for k in ("operator", "clerk", "admin"))
    async with api_client(platform) as client:
        refused = await client.post("/api/v1/notices", json=FACE_NOTICE, headers=clerk)
        assert refused.status_code == 403
        published = await client.post("/api/v1/notices", json=FACE_NOTICE, headers=operator)
        assert published.status_code == 201, published.text
        assert published.json()["version"] == 1
        assert len(published.json()["content_hash"]) == 64
        regulator = await client.post("/api/v1/notices", json=REGULATOR_NOTICE, headers=operator)
        assert regulator.status_code == 201, regulator.text
        listed = await client.get("/api/v1/notices", headers=clerk)
        assert {n["kind"] for n in listed.json()} == {"face_recognition", "regulator_reporting"}

        recorded = await _consent(client, clerk)
        assert recorded.status_code == 201, recorded.text
        event = recorded.json()["event"]
        assert event["separate"] is True
        assert event["notice_hash"] == published.json()["content_hash"]
        receipt = (
            await client.get(f"/api/v1/consents/{event['id']}/receipt", headers=clerk)
        ).json()
        assert receipt == recorded.json()["receipt"]
        verified = await client.post(
            "/api/v1/consents/receipts/verify", json=receipt, headers=clerk
        )
        assert verified.status_code == 200
        assert verified.json()["valid"] is True
        receipt["receipt"]["action"] = "refused"
        forged = await client.post("/api/v1/consents/receipts/verify", json=receipt, headers=clerk)
        assert code_of(forged) == "integrity_check_failed"

        check = await client.get(
            "/api/v1/consents/check",
            params={"subject_id": "guest-h1", "purpose": "lock_credential_issue"},
            headers=clerk,
        )
        assert check.json()["status"] == "consented"
        assert check.json()["allowed"] is True
        overview = await client.get(
            "/api/v1/consents/overview", params={"subject_id": "guest-h1"}, headers=clerk
        )
        assert {a["purpose"]: a["status"] for a in overview.json()} == {
            "lock_credential_issue": "consented",
            "regulator_report": "not_asked",
        }
        # The security administrator reads no PI, consent records included (L7).
        assert (
            await client.get("/api/v1/consents", params={"subject_id": "guest-h1"}, headers=admin)
        ).status_code == 403
        assert (await client.post("/api/v1/retention/sweeps", headers=admin)).status_code == 403


@pytest.mark.req("L4", "L10")
async def test_bad_consent_input_over_http_gets_stable_codes(
    platform: Platform, clock: FixedClock
) -> None:
    staff = await _staff(platform, clock, "Org A", "b")
    operator, clerk = bearer(staff["operator"]), bearer(staff["clerk"])
    async with api_client(platform) as client:
        await client.post("/api/v1/notices", json=FACE_NOTICE, headers=operator)
        cases = [
            ({"notice_version": 2}, 404, "unknown_notice_version"),
            ({"purpose": "guest_contact"}, 422, "purpose_not_in_notice"),
            ({"subject_id": "x' OR 1=1 --"}, 422, "invalid_input"),
            ({"subject_id": "g" * 65}, 422, "invalid_input"),
            ({"action": "maybe"}, 422, "invalid_input"),
            ({"channel": "carrier-pigeon"}, 422, "invalid_input"),
            ({"action": "withdrawn"}, 409, "nothing_to_withdraw"),
        ]
        for body, status, code in cases:
            response = await _consent(client, clerk, **body)
            assert (response.status_code, code_of(response)) == (status, code), body
        huge = FACE_NOTICE | {"text_zh": "字" * 70_000}
        assert code_of(await client.post("/api/v1/notices", json=huge, headers=operator)) in {
            "invalid_input",
            "payload_too_large",
        }
        bundled = FACE_NOTICE | {
            "items": [{"purpose": "guest_contact", "categories": ["phone"], "required": False}]
        }
        response = await client.post("/api/v1/notices", json=bundled, headers=operator)
        assert code_of(response) == "invalid_input"
        history = await client.get(
            "/api/v1/consents", params={"subject_id": "guest-h1"}, headers=clerk
        )
        assert history.json() == []  # nothing half-written


@pytest.mark.req("L4", "L12")
async def test_organisations_see_only_their_own_notices_and_consents(
    platform: Platform, clock: FixedClock
) -> None:
    org_a = await _staff(platform, clock, "Org A", "c")
    org_b = await _staff(platform, clock, "Org B", "d")
    async with api_client(platform) as client:
        await client.post("/api/v1/notices", json=FACE_NOTICE, headers=bearer(org_a["operator"]))
        event = (await _consent(client, bearer(org_a["clerk"]))).json()["event"]
        b_clerk = bearer(org_b["clerk"])
        assert (await client.get("/api/v1/notices", headers=b_clerk)).json() == []
        receipt = await client.get(f"/api/v1/consents/{event['id']}/receipt", headers=b_clerk)
        assert receipt.status_code == 404
        assert code_of(await _consent(client, b_clerk)) == "unknown_notice_version"
        closure = await client.post(
            "/api/v1/retention/closures",
            json={"subject_id": "guest-h1", "channel": "app"},
            headers=bearer(org_b["operator"]),
        )
        assert closure.status_code == 404
        anchor = await client.post(
            "/api/v1/retention/anchors",
            json={"subject_id": "guest-h1", "anchor": "check_out"},
            headers=bearer(org_b["operator"]),
        )
        assert anchor.status_code == 404


@pytest.mark.req("L10", "L12", "F5")
async def test_retention_policies_closure_and_sweep_over_http(
    platform: Platform, clock: FixedClock
) -> None:
    staff = await _staff(platform, clock, "Org A", "e")
    operator, clerk = bearer(staff["operator"]), bearer(staff["clerk"])
    async with api_client(platform) as client:
        policies = {
            p["kind"]: p
            for p in (await client.get("/api/v1/retention/policies", headers=operator)).json()
        }
        assert policies["portrait"]["action"] == "never_stored"
        assert policies["biometric_template"]["days"] == 0
        assert policies["biometric_template"]["swept"]
        assert policies["unlock_record"]["minimum_days"] == 180
        assert policies["unlock_record"]["swept"]
        assert (await client.get("/api/v1/retention/policies", headers=clerk)).status_code == 403

        await client.post("/api/v1/notices", json=FACE_NOTICE, headers=operator)
        await _consent(client, clerk)
        closed = await client.post(
            "/api/v1/retention/closures",
            json={"subject_id": "guest-h1", "channel": "app"},
            headers=operator,
        )
        assert closed.status_code == 201
        assert closed.json()["consents_withdrawn"] == 1
        bad = await client.post(
            "/api/v1/retention/anchors",
            json={"subject_id": "guest-h1", "anchor": "forever"},
            headers=operator,
        )
        assert code_of(bad) == "invalid_input"
        clock.advance(days=3 * 365 + 1)
        operator = bearer(await login_token(platform, "e-dpo"))  # the old session expired
        swept = await client.post("/api/v1/retention/sweeps", headers=operator)
        assert swept.status_code == 201, swept.text
        assert swept.json()["counts"]["consent_record"] == 2  # given + withdrawn, past 3 years
        runs = (await client.get("/api/v1/retention/runs", headers=operator)).json()
        assert runs[0]["id"] == swept.json()["id"]
        assert runs[0]["removed"] == swept.json()["removed"]
