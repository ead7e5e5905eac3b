"""Device commands over HTTP: queue, list, read, cancel; scope, second factor, hostile input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from anju.app import create_app
from anju.devices.commands import MAX_ARGS_BYTES, CommandService
from anju.devices.lifecycle import claim_code
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.accounts import as_principal, login_token, make_admin, make_member, step_up
from tests.support.http import bearer, code_of, signed_in
from tests.support.registry import Made, audit_entries, manufacture


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://anju.test") as c:
        yield c


async def claimed(client: httpx.AsyncClient, headers: dict[str, str], made: Made) -> None:
    response = await client.post(
        f"/api/v1/devices/{made.device_id}/register",
        json={"claim_code": claim_code(made.root_key)},
        headers=headers,
    )
    assert response.status_code == 200, response.text


@pytest.mark.req("R11", "L17", "R14")
async def test_queue_list_read_and_cancel_commands_over_http(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    admin = await make_admin(platform, login="sa-a", org="Org A")
    headers = await signed_in(client, clock, admin)
    await claimed(client, headers, made)
    base = f"/api/v1/devices/{made.device_id}/commands"

    body = {"name": "credential.add", "args": {"pin": "852963", "slot": 3}, "ttl_seconds": 900}
    created = await client.post(base, json=body, headers=headers)
    assert created.status_code == 201, created.text
    command = created.json()
    assert command["status"] == "queued"
    assert (command["seq"], command["attempts"], command["max_attempts"]) == (1, 0, 5)
    assert command["arg_names"] == ["pin", "slot"]
    assert "852963" not in created.text  # argument values are write-only
    second = await client.post(base, json={"name": "unlock"}, headers=headers)
    assert second.json()["seq"] == 2
    assert second.json()["arg_names"] == []

    listed = await client.get(base, headers=headers)
    assert [c["seq"] for c in listed.json()] == [2, 1]  # newest first
    one = await client.get(f"/api/v1/commands/{command['id']}", headers=headers)
    assert one.json()["name"] == "credential.add"

    # The gateway sends the second; it can no longer be cancelled.
    async with platform.db.transaction() as session:
        await CommandService(platform, session).mark_sent([second.json()["id"]])
    cancelled = await client.post(f"/api/v1/commands/{command['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["result_code"]) == (
        "cancelled",
        "cancelled",
    )
    refused = await client.post(f"/api/v1/commands/{second.json()['id']}/cancel", headers=headers)
    assert (refused.status_code, code_of(refused)) == (409, "command_not_cancellable")
    sent = await client.get(f"{base}?status=sent", headers=headers)
    assert [c["name"] for c in sent.json()] == ["unlock"]
    for action in ("devices.command.queued", "devices.command.cancelled"):
        entries = await audit_entries(platform, action)
        assert entries, action
        assert all("852963" not in e.details for e in entries)


@pytest.mark.req("R11", "L14", "R17")
async def test_commands_are_scoped_to_the_organisation(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    admin = await make_admin(platform, login="sa-a", org="Org A")
    other = await make_admin(platform, login="sa-b", org="Org B")
    headers = await signed_in(client, clock, admin)
    await claimed(client, headers, made)
    base = f"/api/v1/devices/{made.device_id}/commands"
    command = (await client.post(base, json={"name": "unlock"}, headers=headers)).json()

    other_headers = await signed_in(client, clock, other)
    for method, path, json_body in (
        ("post", base, {"name": "unlock"}),
        ("get", base, None),
        ("get", f"/api/v1/commands/{command['id']}", None),
        ("post", f"/api/v1/commands/{command['id']}/cancel", None),
        ("get", "/api/v1/devices/" + "0" * 32 + "/commands", None),
        ("get", "/api/v1/commands/no-such-command", None),
    ):
        response = await client.request(method, path, json=json_body, headers=other_headers)
        assert (response.status_code, code_of(response)) == (404, "not_found"), path
    listed = await client.get(base, headers=headers)
    assert [c["status"] for c in listed.json()] == ["queued"]  # untouched by org B


@pytest.mark.req("R17", "L7")
async def test_queueing_needs_devices_manage_and_a_recent_second_factor(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    admin = await make_admin(platform, login="sa-a", org="Org A")
    headers = await signed_in(client, clock, admin)
    await claimed(client, headers, made)
    base = f"/api/v1/devices/{made.device_id}/commands"
    command = (await client.post(base, json={"name": "unlock"}, headers=headers)).json()

    no_step_up = await signed_in(client, clock, admin, step_up=False)
    for path in (base, f"/api/v1/commands/{command['id']}/cancel"):
        response = await client.post(path, json={"name": "unlock"}, headers=no_step_up)
        assert (response.status_code, code_of(response)) == (403, "second_factor_required")
    assert (await client.get(base, headers=no_step_up)).status_code == 200  # reading is fine

    token = await login_token(platform, admin.login)
    await step_up(platform, clock, admin, token)
    landlord_id, landlord_token = await make_member(platform, clock, admin, token, "landlord1")
    await step_up(platform, clock, admin, token)
    await as_principal(platform, token, lambda s, p: s.grant_role(p, landlord_id, "landlord"))
    landlord = bearer(landlord_token)
    read = await client.get(base, headers=landlord)
    assert read.status_code == 200, read.text
    refused = await client.post(base, json={"name": "unlock"}, headers=landlord)
    assert (refused.status_code, code_of(refused)) == (403, "forbidden")
    _, nobody_token = await make_member(platform, clock, admin, token, "clerk1")
    nothing = await client.get(base, headers=bearer(nobody_token))
    assert (nothing.status_code, code_of(nothing)) == (403, "forbidden")
    anonymous = await client.get(base)
    assert (anonymous.status_code, code_of(anonymous)) == (401, "unauthenticated")


@pytest.mark.req("R11", "L14")
async def test_revoked_device_refuses_commands_over_http(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    admin = await make_admin(platform, login="sa-a", org="Org A")
    headers = await signed_in(client, clock, admin)
    await claimed(client, headers, made)
    revoked = await client.post(
        f"/api/v1/devices/{made.device_id}/revoke", json={"reason": "stolen"}, headers=headers
    )
    assert revoked.status_code == 200, revoked.text
    response = await client.post(
        f"/api/v1/devices/{made.device_id}/commands", json={"name": "unlock"}, headers=headers
    )
    assert (response.status_code, code_of(response)) == (409, "device_not_commandable")


@pytest.mark.req("R16", "L16")
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "Unlock"}, 422, "invalid_command"),
        ({"name": "unlock", "args": {"ratio": 1.5}}, 422, "invalid_command"),
        ({"name": "unlock", "args": {"Bad-Key": 1}}, 422, "invalid_command"),
        ({"name": "unlock", "args": {"n": 1 << 62}}, 422, "invalid_command"),
        ({"name": "unlock", "args": {"blob": "x" * (MAX_ARGS_BYTES + 1)}}, 413,
         "command_too_large"),
        ({"name": "unlock", "args": {f"k{i}": i for i in range(257)}}, 422, "invalid_input"),
        ({"name": "unlock", "args": []}, 422, "invalid_input"),
        ({"name": "unlock", "args": "x"}, 422, "invalid_input"),
        ({"name": 7}, 422, "invalid_input"),
        ({"name": "x" * 65}, 422, "invalid_input"),
        ({"name": "unlock", "ttl_seconds": "60"}, 422, "invalid_input"),
        ({"name": "unlock", "ttl_seconds": 0}, 422, "invalid_input"),
        ({"name": "unlock", "ttl_seconds": 10**9}, 422, "invalid_input"),
        ({"name": "unlock", "max_attempts": 0}, 422, "invalid_input"),
        ({"name": "unlock", "extra": 1}, 422, "invalid_input"),
        ({}, 422, "invalid_input"),
        ([], 422, "invalid_input"),
    ],
)  # fmt: skip
async def test_malformed_command_requests_get_stable_4xx_codes(
    platform: Platform,
    clock: FixedClock,
    client: httpx.AsyncClient,
    tmp_path: Path,
    body: Any,
    status: int,
    code: str,
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    admin = await make_admin(platform, login="sa-a", org="Org A")
    headers = await signed_in(client, clock, admin)
    await claimed(client, headers, made)
    base = f"/api/v1/devices/{made.device_id}/commands"
    response = await client.post(base, json=body, headers=headers)
    assert (response.status_code, code_of(response)) == (status, code), response.text
    assert (await client.get(base, headers=headers)).json() == []


@pytest.mark.req("R16")
async def test_bad_paths_queries_and_bodies(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    admin = await make_admin(platform, login="sa-a", org="Org A")
    headers = await signed_in(client, clock, admin)
    await claimed(client, headers, made)
    base = f"/api/v1/devices/{made.device_id}/commands"
    cases = [
        ("get", f"{base}?status=lost", None, 422, "invalid_input"),
        ("get", f"{base}?limit=0", None, 422, "invalid_input"),
        ("get", "/api/v1/commands/" + "x" * 65, None, 422, "invalid_input"),
        ("post", "/api/v1/devices/" + "Z" * 32 + "/commands", {"name": "unlock"}, 404,
         "not_found"),
    ]  # fmt: skip
    for method, path, body, status, code in cases:
        response = await client.request(method, path, json=body, headers=headers)
        assert (response.status_code, code_of(response)) == (status, code), path
    raw = await client.post(
        base,
        content=b'{"name": "unlock", "args": {"s": "\\ud800"}}',
        headers={**headers, "content-type": "application/json"},
    )
    assert (raw.status_code, code_of(raw)) == (422, "invalid_command")
    garbage = await client.post(
        base, content=b"{not json", headers={**headers, "content-type": "application/json"}
    )
    assert garbage.status_code == 400
    assert code_of(garbage) == "malformed_json"
