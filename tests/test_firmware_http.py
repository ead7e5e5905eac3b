"""The firmware API over HTTP: upload, rollouts and their control; capabilities, second factor,
organisation scope and hostile input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.firmware import MAX_PACKAGE_BYTES
from tests.support.accounts import as_principal, login_token, make_admin, make_member, step_up
from tests.support.firmware import image_bytes, platform_package, registered_fleet
from tests.support.http import api_client, bearer, code_of, signed_in

pytestmark = pytest.mark.req("R11", "R17", "L16", "L17")

BASE = "/api/v1/firmware"
OCTETS = {"content-type": "application/octet-stream"}


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(platform) as c:
        yield c


async def test_upload_roll_out_and_control_over_http(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(platform, login="sa-a", org="Org A")
    _, fleet = await registered_fleet(platform, 4, org_id=admin.org_id)
    headers = await signed_in(client, clock, admin)
    package = platform_package(platform, image_bytes(30_000), "0.2.0")
    uploaded = await client.post(
        f"{BASE}/packages", content=package.encode(), headers={**headers, **OCTETS}
    )
    assert uploaded.status_code == 201, uploaded.text
    pkg = uploaded.json()
    assert (pkg["product_key"], pkg["version"], pkg["size"]) == ("lock-x1", "0.2.0", 30_000)
    assert pkg["sm3"] == package.manifest.sm3.hex()
    listed = await client.get(f"{BASE}/packages?product=lock-x1", headers=headers)
    assert [p["id"] for p in listed.json()] == [pkg["id"]]
    assert (await client.get(f"{BASE}/packages/{pkg['id']}", headers=headers)).status_code == 200

    created = await client.post(
        f"{BASE}/rollouts",
        json={"package_id": pkg["id"], "stages": [50, 100], "failure_threshold_pct": 25},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    rollout = created.json()
    assert (rollout["status"], rollout["devices"], rollout["states"]) == (
        "draft",
        4,
        {"pending": 4},
    )
    assert rollout["stage_states"] == [{"pending": 2}, {"pending": 2}]
    rid = rollout["id"]
    started = await client.post(f"{BASE}/rollouts/{rid}/start", headers=headers)
    assert started.status_code == 200, started.text
    assert (started.json()["status"], started.json()["states"]) == (
        "running",
        {"sent": 2, "pending": 2},
    )
    devices = await client.get(f"{BASE}/rollouts/{rid}/devices?state=sent", headers=headers)
    assert len(devices.json()) == 2
    assert {d["device_id"] for d in devices.json()} <= set(fleet)
    assert all(d["command_id"] for d in devices.json())
    paused = await client.post(f"{BASE}/rollouts/{rid}/pause", headers=headers)
    assert (paused.json()["status"], paused.json()["paused_reason"]) == ("paused", "operator")
    # Undelivered offers were taken back.
    assert paused.json()["states"] == {"pending": 4}
    again = await client.post(f"{BASE}/rollouts/{rid}/pause", headers=headers)
    assert (again.status_code, code_of(again)) == (409, "illegal_rollout_transition")
    resumed = await client.post(f"{BASE}/rollouts/{rid}/resume", headers=headers)
    assert resumed.json()["states"] == {"sent": 2, "pending": 2}
    cancelled = await client.post(f"{BASE}/rollouts/{rid}/cancel", headers=headers)
    assert (cancelled.json()["status"], cancelled.json()["states"]) == (
        "cancelled",
        {"cancelled": 4},
    )
    listed = await client.get(f"{BASE}/rollouts?status=cancelled", headers=headers)
    assert [r["id"] for r in listed.json()] == [rid]


async def test_capabilities_second_factor_and_organisation_scope(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(platform, login="sa-a", org="Org A")
    other = await make_admin(platform, login="sa-b", org="Org B")
    await registered_fleet(platform, 2, org_id=admin.org_id)
    headers = await signed_in(client, clock, admin)
    package = platform_package(platform, image_bytes(1000), "0.2.0").encode()
    pkg = (await client.post(f"{BASE}/packages", content=package, headers=headers)).json()
    rid = (
        await client.post(f"{BASE}/rollouts", json={"package_id": pkg["id"]}, headers=headers)
    ).json()["id"]

    # Without a recent second factor: reading yes, changing no.
    no_step_up = await signed_in(client, clock, admin, step_up=False)
    for path, body in (
        (f"{BASE}/rollouts", {"package_id": pkg["id"]}),
        (f"{BASE}/rollouts/{rid}/start", None),
    ):
        refused = await client.post(path, json=body, headers=no_step_up)
        assert (refused.status_code, code_of(refused)) == (403, "second_factor_required"), path
    refused = await client.post(f"{BASE}/packages", content=package, headers=no_step_up)
    assert (refused.status_code, code_of(refused)) == (403, "second_factor_required")
    assert (await client.get(f"{BASE}/rollouts/{rid}", headers=no_step_up)).status_code == 200

    # A landlord reads (devices.read) but cannot upload or roll out; a clerk cannot even read.
    token = await login_token(platform, admin.login)
    await step_up(platform, clock, admin, token)
    landlord_id, landlord_token = await make_member(platform, clock, admin, token, "landlord1")
    await step_up(platform, clock, admin, token)
    await as_principal(platform, token, lambda s, p: s.grant_role(p, landlord_id, "landlord"))
    landlord = bearer(landlord_token)
    assert (await client.get(f"{BASE}/packages", headers=landlord)).status_code == 200
    assert (await client.get(f"{BASE}/rollouts/{rid}", headers=landlord)).status_code == 200
    for method, path, kwargs in (
        ("post", f"{BASE}/packages", {"content": package}),
        ("post", f"{BASE}/rollouts", {"json": {"package_id": pkg["id"]}}),
        ("post", f"{BASE}/rollouts/{rid}/start", {}),
    ):
        response = await client.request(method, path, headers=landlord, **kwargs)
        assert (response.status_code, code_of(response)) == (403, "forbidden"), path
    _, clerk_token = await make_member(platform, clock, admin, token, "clerk1")
    nothing = await client.get(f"{BASE}/packages", headers=bearer(clerk_token))
    assert (nothing.status_code, code_of(nothing)) == (403, "forbidden")
    anonymous = await client.get(f"{BASE}/packages")
    assert (anonymous.status_code, code_of(anonymous)) == (401, "unauthenticated")

    # Another organisation sees the (platform-wide) package but not our rollout.
    other_headers = await signed_in(client, clock, other)
    assert (
        await client.get(f"{BASE}/packages/{pkg['id']}", headers=other_headers)
    ).status_code == 200
    for method, path in (
        ("get", f"{BASE}/rollouts/{rid}"),
        ("get", f"{BASE}/rollouts/{rid}/devices"),
        ("post", f"{BASE}/rollouts/{rid}/start"),
        ("post", f"{BASE}/rollouts/{rid}/cancel"),
    ):
        response = await client.request(method, path, headers=other_headers)
        assert (response.status_code, code_of(response)) == (404, "not_found"), path
    assert (await client.get(f"{BASE}/rollouts", headers=other_headers)).json() == []
    # Org B has no lock-x1 devices: nothing to roll out to.
    none = await client.post(
        f"{BASE}/rollouts", json={"package_id": pkg["id"]}, headers=other_headers
    )
    assert (none.status_code, code_of(none)) == (422, "no_eligible_devices")

    # A platform-level account manages rollouts with the CLI, not over HTTP.
    operator = await make_admin(platform, login="sa-platform", org=None)
    operator_headers = await signed_in(client, clock, operator)
    response = await client.get(f"{BASE}/rollouts", headers=operator_headers)
    assert (response.status_code, code_of(response)) == (403, "forbidden")


async def test_malformed_and_hostile_input_gets_stable_codes(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(platform, login="sa-a", org="Org A")
    await registered_fleet(platform, 1, org_id=admin.org_id)
    headers = await signed_in(client, clock, admin)
    good = platform_package(platform, image_bytes(1000), "0.2.0").encode()
    tampered = bytearray(good)
    tampered[-1] ^= 0xFF
    for body, reason in (
        (b"", "fw_malformed"),
        (b"AFW1" + b"\xff" * 64, "fw_malformed"),
        (bytes(tampered), "fw_digest_mismatch"),
        (good[:-1], "fw_digest_mismatch"),
    ):
        response = await client.post(f"{BASE}/packages", content=body, headers=headers)
        assert (response.status_code, code_of(response)) == (422, "firmware_refused")
        assert response.json()["error"]["details"]["reason"] == reason
    too_big = await client.post(
        f"{BASE}/packages", content=b"\x00" * (MAX_PACKAGE_BYTES + 1), headers=headers
    )
    assert (too_big.status_code, code_of(too_big)) == (413, "payload_too_large")
    # Other paths keep the ordinary body limit.
    big_json = await client.post(
        f"{BASE}/rollouts", content=b"{" + b" " * (2 << 20) + b"}", headers=headers
    )
    assert big_json.status_code == 413
    pkg = (await client.post(f"{BASE}/packages", content=good, headers=headers)).json()
    duplicate = await client.post(f"{BASE}/packages", content=good, headers=headers)
    assert (duplicate.status_code, code_of(duplicate)) == (409, "package_exists")

    for body in (
        {"package_id": pkg["id"], "stages": [50]},
        {"package_id": pkg["id"], "stages": [60, 30, 100]},
        {"package_id": pkg["id"], "stages": [101]},
        {"package_id": pkg["id"], "success_threshold_pct": -1},
        {"package_id": pkg["id"], "device_ids": []},
        {"package_id": pkg["id"], "device_ids": ["x" * 32]},
        {"package_id": pkg["id"], "from_version": "one"},
        {"package_id": pkg["id"], "surprise": True},
        {"package_id": 7},
        {},
    ):
        response = await client.post(f"{BASE}/rollouts", json=body, headers=headers)
        assert (response.status_code, code_of(response)) == (422, "invalid_input"), body
    missing = await client.post(f"{BASE}/rollouts", json={"package_id": "nope"}, headers=headers)
    assert (missing.status_code, code_of(missing)) == (404, "not_found")
    rid = (
        await client.post(f"{BASE}/rollouts", json={"package_id": pkg["id"]}, headers=headers)
    ).json()["id"]
    resume = await client.post(f"{BASE}/rollouts/{rid}/resume", headers=headers)
    assert (resume.status_code, code_of(resume)) == (409, "illegal_rollout_transition")
    bogus = await client.post(f"{BASE}/rollouts/{rid}/explode", headers=headers)
    assert bogus.status_code == 422
    for path in (f"{BASE}/rollouts/{'x' * 65}", f"{BASE}/packages/{'x' * 65}"):
        assert (await client.get(path, headers=headers)).status_code == 422
    assert (await client.get(f"{BASE}/rollouts/no-such", headers=headers)).status_code == 404
    bad_state = await client.get(f"{BASE}/rollouts/{rid}/devices?state=exploded", headers=headers)
    assert bad_state.status_code == 422
