"""The device API over HTTP: claiming, registry reads, lifecycle, provisioning, hostile input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from anju.devices.lifecycle import claim_code
from anju.devices.provisioning import ProvisioningService, proof_message
from anju.kit.clock import FixedClock
from anju.kit.crypto import SM2PrivateKey, SM2PublicKey, hmac_sm3, random_bytes
from anju.platform import Platform
from anju.protocol.certificates import Certificate, CertKind
from tests.support.accounts import make_admin
from tests.support.http import api_client, code_of, signed_in
from tests.support.registry import audit_entries, manufacture


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(platform) as c:
        yield c


@pytest.mark.req("R11", "R17", "L14")
async def test_claim_read_update_and_retire_a_device_over_http(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    admin = await make_admin(platform, login="sa-a", org="Org A")
    other = await make_admin(platform, login="sa-b", org="Org B")
    headers = await signed_in(client, clock, admin)
    base = f"/api/v1/devices/{made.device_id}"

    wrong = await client.post(
        f"{base}/register", json={"claim_code": "AAAA-AAAA-AAAAA"}, headers=headers
    )
    assert (wrong.status_code, code_of(wrong)) == (403, "claim_code_invalid")
    body = {"claim_code": claim_code(made.root_key), "place": {"kind": "room", "ref": "1203"}}
    response = await client.post(f"{base}/register", json=body, headers=headers)
    assert response.status_code == 200, response.text
    device = response.json()
    assert device["status"] == "registered"
    assert device["place"] == {"kind": "room", "ref": "1203"}
    assert device["cert_serial"] == made.certificate.serial.hex()
    assert not {"root_key_wrapped", "root_key", "certificate"} & set(device)

    listed = await client.get("/api/v1/devices?type=lock&status=registered", headers=headers)
    assert [d["id"] for d in listed.json()] == [made.device_id]
    assert (await client.get("/api/v1/devices?place_ref=9999", headers=headers)).json() == []
    patched = await client.patch(
        f"{base}/attributes", json={"attributes": {"name": "Room 1203"}}, headers=headers
    )
    assert patched.json()["attributes"] == {"name": "Room 1203"}

    other_headers = await signed_in(client, clock, other)
    hidden = await client.get(base, headers=other_headers)
    assert (hidden.status_code, code_of(hidden)) == (404, "not_found")
    assert (await client.get("/api/v1/devices", headers=other_headers)).json() == []

    revoked = await client.post(f"{base}/revoke", json={"reason": "compromised"}, headers=headers)
    assert revoked.json()["status"] == "revoked"
    again = await client.post(f"{base}/suspend", json={}, headers=headers)
    assert (again.status_code, code_of(again)) == (409, "illegal_transition")
    gone = await client.post(f"{base}/decommission", json={}, headers=headers)
    assert gone.json()["status"] == "decommissioned"
    assert gone.json()["place"] is None
    ops = (await client.get(f"{base}/operations", headers=headers)).json()
    assert [o["operation"] for o in ops] == [
        "decommissioned",
        "revoked",
        "attributes.updated",
        "registered",
    ]
    assert ops[0]["details"]["root_key_destroyed"] is True
    for action in ("devices.registered", "devices.revoked", "devices.decommissioned"):
        assert await audit_entries(platform, action), action


@pytest.mark.req("R17")
async def test_sensitive_device_operations_need_the_second_factor_and_capability(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    admin = await make_admin(platform, login="sa-a", org="Org A")
    headers = await signed_in(client, clock, admin, step_up=False)
    body = {"claim_code": claim_code(made.root_key)}
    response = await client.post(
        f"/api/v1/devices/{made.device_id}/register", json=body, headers=headers
    )
    assert (response.status_code, code_of(response)) == (403, "second_factor_required")
    anonymous = await client.get("/api/v1/devices")
    assert (anonymous.status_code, code_of(anonymous)) == (401, "unauthenticated")


@pytest.mark.req("R16")
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("post", "/register", {"claim_code": 12345678}, 422, "invalid_input"),
        ("post", "/register", {"claim_code": "x" * 33}, 422, "invalid_input"),
        ("post", "/register", {"claim_code": "ABCD", "extra": 1}, 422, "invalid_input"),
        ("post", "/register", {"claim_code": "ABCD", "place": {"kind": "attic", "ref": "1"}},
         422, "invalid_input"),
        ("patch", "/attributes", {"attributes": {"k": {"nested": 1}}}, 422, "invalid_input"),
        ("patch", "/attributes", {"attributes": {"k": "v" * 201}}, 422, "invalid_input"),
        ("patch", "/attributes", {"attributes": {f"k{i}": i for i in range(65)}}, 422,
         "invalid_input"),
        ("post", "/revoke", {"reason": "because I said so"}, 422, "invalid_input"),
        ("post", "/revoke", [], 422, "invalid_input"),
    ],
)  # fmt: skip
async def test_malformed_device_requests_get_stable_4xx_codes(
    platform: Platform,
    clock: FixedClock,
    client: httpx.AsyncClient,
    tmp_path: Path,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    admin = await make_admin(platform, login="sa-a", org="Org A")
    headers = await signed_in(client, clock, admin)
    await client.post(
        f"/api/v1/devices/{made.device_id}/register",
        json={"claim_code": claim_code(made.root_key)},
        headers=headers,
    )
    response = await client.request(
        method, f"/api/v1/devices/{made.device_id}{path}", json=body, headers=headers
    )
    assert (response.status_code, code_of(response)) == (status, code), response.text


@pytest.mark.req("R16")
async def test_unknown_ids_oversized_bodies_and_bad_queries(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(platform, login="sa-a", org="Org A")
    headers = await signed_in(client, clock, admin)
    for device_id in ("0" * 32, "not-hex", "Z" * 64):
        response = await client.get(f"/api/v1/devices/{device_id}", headers=headers)
        assert (response.status_code, code_of(response)) == (404, "not_found")
    too_long = await client.get(f"/api/v1/devices/{'a' * 65}", headers=headers)
    assert too_long.status_code == 422
    huge = b'{"claim_code": "' + b"A" * (platform.settings.max_request_bytes + 10) + b'"}'
    response = await client.post(
        f"/api/v1/devices/{'0' * 32}/register",
        content=huge,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert (response.status_code, code_of(response)) == (413, "payload_too_large")
    for query in ("status=flying", "limit=0", "limit=501", "online=maybe", "offset=-1"):
        response = await client.get(f"/api/v1/devices?{query}", headers=headers)
        assert (response.status_code, code_of(response)) == (422, "invalid_input"), query


@pytest.mark.req("R18", "R15")
async def test_dynamic_registration_over_http(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    async with platform.db.transaction() as session:
        _, secret = await ProvisioningService(platform, session).create_product(
            "smoke-s1", "smoke_detector", "Smoke S1", dynamic_registration=True
        )
    assert secret is not None
    ca = await client.get("/api/v1/provisioning/ca")
    ca_key = SM2PublicKey.from_pem(ca.json()["ca_public_key_pem"])
    key = SM2PrivateKey.generate()
    device_id, se_id, nonce = random_bytes(16).hex(), random_bytes(16).hex(), random_bytes(16)
    now = int(clock.now().timestamp())
    mac = hmac_sm3(secret, proof_message(device_id, se_id, key.public_key.raw, now, nonce))
    body = {
        "product_key": "smoke-s1",
        "device_id": device_id,
        "se_id": se_id,
        "public_key": key.public_key.raw.hex(),
        "timestamp": now,
        "nonce": nonce.hex(),
        "mac": mac.hex(),
    }
    response = await client.post("/api/v1/provisioning/register", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    cert = Certificate.decode(bytes.fromhex(result["certificate"]))
    cert.verify_as(CertKind.DEVICE, ca_key, now=now)
    assert len(key.decrypt(bytes.fromhex(result["root_key_ciphertext"]))) == 16
    assert result["topics"]["subscribe"] == f"anju/v1/dev/{device_id}/down"

    replay = await client.post("/api/v1/provisioning/register", json=body)
    assert (replay.status_code, code_of(replay)) == (403, "registration_refused")
    assert replay.json()["error"]["details"]["reason"] == "replay"
    forged = {**body, "nonce": random_bytes(16).hex()}
    bad = await client.post("/api/v1/provisioning/register", json=forged)
    assert bad.json()["error"]["details"]["reason"] == "bad_proof"
    for broken in (
        {**body, "public_key": "00" * 64},  # not a point on the curve
        {**body, "timestamp": "now"},
        {**body, "device_id": "G" * 32},
        {**body, "mac": body["mac"][:-2]},
        {k: v for k, v in body.items() if k != "nonce"},
    ):
        response = await client.post("/api/v1/provisioning/register", json=broken)
        assert (response.status_code, code_of(response)) == (422, "invalid_input"), broken


@pytest.mark.req("R17")
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "/place", {"place": None}),
        ("post", "/decommission", {}),
        ("post", "/revoke", {}),
    ],
)
async def test_unbinding_or_retiring_a_device_needs_a_fresh_second_factor(
    platform: Platform,
    clock: FixedClock,
    client: httpx.AsyncClient,
    tmp_path: Path,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    admin = await make_admin(platform, login="sa-a", org="Org A")
    stepped_up = await signed_in(client, clock, admin)
    base = f"/api/v1/devices/{made.device_id}"
    claimed = {"claim_code": claim_code(made.root_key), "place": {"kind": "room", "ref": "8"}}
    assert (await client.post(f"{base}/register", json=claimed, headers=stepped_up)).is_success
    plain = await signed_in(client, clock, admin, step_up=False)

    refused = await client.request(method, f"{base}{path}", json=body, headers=plain)
    assert (refused.status_code, code_of(refused)) == (403, "second_factor_required")
    device = (await client.get(base, headers=plain)).json()
    assert (device["status"], device["place"]) == ("registered", {"kind": "room", "ref": "8"})
    allowed = await client.request(method, f"{base}{path}", json=body, headers=stepped_up)
    assert allowed.is_success, allowed.text
