"""Accounts over HTTP: the endpoints, their error codes, and hostile input never giving a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from anju.accounts import totp
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.accounts import PASSWORD, Admin, make_admin
from tests.support.http import api_client, bearer

NEW_PASSWORD = "Battery.Staple-77"


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(platform) as c:
        yield c


async def sign_in(client: httpx.AsyncClient, login: str, password: str = PASSWORD) -> str:
    response = await client.post("/api/v1/auth/login", json={"login": login, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def step_up(client: httpx.AsyncClient, clock: FixedClock, admin: Admin, token: str) -> None:
    clock.advance(seconds=totp.STEP_SECONDS)
    response = await client.post(
        "/api/v1/auth/second-factor",
        json={"code": totp.code_at(admin.secret, clock.now())},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text


def error_code(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    return str(body["error"]["code"])


@pytest.mark.req("F1", "R17")
async def test_login_me_and_logout(platform: Platform, client: httpx.AsyncClient) -> None:
    admin = await make_admin(platform)
    response = await client.post(
        "/api/v1/auth/login", json={"login": "sa-one", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["second_factor_verified"] is False
    me = await client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.json()["id"] == admin.id
    assert me.json()["roles"] == ["security_admin"]
    assert "roles.grant" in me.json()["capabilities"]
    assert "pi.read" not in me.json()["capabilities"]
    assert (
        await client.post("/api/v1/auth/logout", headers=bearer(body["token"]))
    ).status_code == 204
    after = await client.get("/api/v1/me", headers=bearer(body["token"]))
    assert after.status_code == 401
    assert error_code(after) == "unauthenticated"


@pytest.mark.req("F1")
async def test_wrong_password_unknown_login_and_lockout_codes(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    await make_admin(platform)
    wrong = await client.post(
        "/api/v1/auth/login", json={"login": "sa-one", "password": "Wrong-Password-1"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"login": "nobody", "password": "Wrong-Password-1"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    for _ in range(platform.settings.login_max_failures - 1):
        await client.post(
            "/api/v1/auth/login", json={"login": "sa-one", "password": "Wrong-Password-1"}
        )
    locked = await client.post("/api/v1/auth/login", json={"login": "sa-one", "password": PASSWORD})
    assert locked.status_code == 423
    assert error_code(locked) == "account_locked"
    assert "Wrong-Password-1" not in locked.text


@pytest.mark.req("L7", "R17")
async def test_account_lifecycle_with_step_up_roles_and_isolation(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(platform, "sa-a", "Org A")
    await make_admin(platform, "sa-b", "Org B")
    token = await sign_in(client, "sa-a")
    token_b = await sign_in(client, "sa-b")

    create = {"login": "clerk", "display_name": "前台 Clerk"}
    refused = await client.post("/api/v1/accounts", json=create, headers=bearer(token))
    assert refused.status_code == 403
    assert error_code(refused) == "second_factor_required"
    await step_up(client, clock, admin, token)
    created = await client.post("/api/v1/accounts", json=create, headers=bearer(token))
    assert created.status_code == 201, created.text
    clerk_id = created.json()["account"]["id"]
    temp = created.json()["temporary_password"]

    granted = await client.post(
        f"/api/v1/accounts/{clerk_id}/roles", json={"role": "front_desk"}, headers=bearer(token)
    )
    assert granted.json() == {"account_id": clerk_id, "roles": ["front_desk"]}
    self_grant = await client.post(
        f"/api/v1/accounts/{admin.id}/roles", json={"role": "landlord"}, headers=bearer(token)
    )
    assert self_grant.status_code == 403
    unknown_role = await client.post(
        f"/api/v1/accounts/{clerk_id}/roles", json={"role": "superuser"}, headers=bearer(token)
    )
    assert unknown_role.status_code == 422
    assert error_code(unknown_role) == "invalid_input"

    # Organisation B sees nothing of organisation A: 404, never 403.
    for method, path, body in (
        ("GET", f"/api/v1/accounts/{clerk_id}", None),
        ("POST", f"/api/v1/accounts/{clerk_id}/unlock", None),
    ):
        response = await client.request(method, path, json=body, headers=bearer(token_b))
        assert response.status_code == 404, (path, response.text)
        assert error_code(response) == "not_found"
    listed_b = await client.get("/api/v1/accounts", headers=bearer(token_b))
    assert [a["login"] for a in listed_b.json()] == ["sa-b"]

    # The new account must change its temporary password before anything else.
    clerk_token = await sign_in(client, "clerk", temp)
    blocked = await client.get("/api/v1/accounts", headers=bearer(clerk_token))
    assert blocked.status_code == 403
    assert error_code(blocked) == "password_change_required"
    weak = await client.post(
        "/api/v1/me/password",
        json={"current_password": temp, "new_password": "clerkclerkclerk1"},
        headers=bearer(clerk_token),
    )
    assert weak.status_code == 422
    assert error_code(weak) == "weak_password"
    assert {r["code"] for r in weak.json()["error"]["details"]["reasons"]} >= {"contains_login"}
    changed = await client.post(
        "/api/v1/me/password",
        json={"current_password": temp, "new_password": NEW_PASSWORD},
        headers=bearer(clerk_token),
    )
    assert changed.status_code == 204
    no_cap = await client.get("/api/v1/accounts", headers=bearer(clerk_token))
    assert no_cap.status_code == 403
    assert error_code(no_cap) == "forbidden"

    revoked = await client.delete(
        f"/api/v1/accounts/{clerk_id}/roles/front_desk", headers=bearer(token)
    )
    assert revoked.json()["roles"] == []
    reset = await client.post(f"/api/v1/accounts/{clerk_id}/reset-password", headers=bearer(token))
    assert reset.status_code == 200
    assert len(reset.json()["temporary_password"]) >= 20


@pytest.mark.req("R17")
async def test_totp_enrolment_over_http(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(platform)
    token = await sign_in(client, "sa-one")
    created_member = None
    await step_up(client, clock, admin, token)
    created_member = await client.post(
        "/api/v1/accounts", json={"login": "manager", "display_name": "M"}, headers=bearer(token)
    )
    temp = created_member.json()["temporary_password"]
    member = await sign_in(client, "manager", temp)
    await client.post(
        "/api/v1/me/password",
        json={"current_password": temp, "new_password": NEW_PASSWORD},
        headers=bearer(member),
    )
    enrol = await client.post("/api/v1/me/totp/enroll", headers=bearer(member))
    assert enrol.status_code == 200
    uri = enrol.json()["otpauth_uri"]
    assert uri.startswith("otpauth://totp/anju:manager?secret=")
    secret = uri.split("secret=")[1].split("&")[0]
    wrong = await client.post(
        "/api/v1/me/totp/confirm", json={"code": "000000"}, headers=bearer(member)
    )
    assert wrong.status_code == 403
    assert error_code(wrong) == "second_factor_invalid"
    ok = await client.post(
        "/api/v1/me/totp/confirm",
        json={"code": totp.code_at(secret, clock.now())},
        headers=bearer(member),
    )
    assert ok.status_code == 204
    me = await client.get("/api/v1/me", headers=bearer(member))
    assert me.json()["second_factor_enrolled"] is True
    # Re-enrolment (replacing the factor) needs a fresh step-up once the window has passed.
    clock.advance(seconds=platform.settings.second_factor_window_seconds + 1)
    again = await client.post("/api/v1/me/totp/enroll", headers=bearer(member))
    assert again.status_code == 403
    assert error_code(again) == "second_factor_required"


@pytest.mark.req("R16", "R15")
async def test_api_keys_over_http(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(platform)
    token = await sign_in(client, "sa-one")
    await step_up(client, clock, admin, token)
    created = await client.post(
        "/api/v1/api-keys", json={"name": "pms", "roles": ["front_desk"]}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text
    key_token = created.json()["token"]
    key_id = created.json()["key"]["id"]
    listed = await client.get("/api/v1/api-keys", headers=bearer(token))
    assert [k["id"] for k in listed.json()] == [key_id]
    assert key_token not in listed.text
    as_key = await client.get("/api/v1/accounts", headers=bearer(key_token))
    assert as_key.status_code == 403  # scope front_desk: no account administration
    assert (
        await client.delete(f"/api/v1/api-keys/{key_id}", headers=bearer(token))
    ).status_code == 204
    after = await client.get("/api/v1/accounts", headers=bearer(key_token))
    assert after.status_code == 401


@pytest.mark.req("F1")
async def test_hostile_input_gets_stable_4xx_codes_never_500(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    await make_admin(platform)
    token = await sign_in(client, "sa-one")
    login = "/api/v1/auth/login"
    json_headers = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, dict[str, str], bytes | None, int, str]] = [
        ("POST", login, json_headers, b'{"login": "sa-one", "password": ', 400, "malformed_json"),
        ("POST", login, json_headers, b"[]", 422, "invalid_input"),
        ("POST", login, json_headers, b'{"login": 5, "password": "x"}', 422, "invalid_input"),
        (
            "POST",
            login,
            json_headers,
            b'{"login": "sa-one", "password": "Correct-Horse-42", "admin": true}',
            422,
            "invalid_input",
        ),
        (
            "POST",
            login,
            json_headers,
            b'{"login": "' + b"a" * 65 + b'", "password": "x"}',
            422,
            "invalid_input",
        ),
        (
            "POST",
            login,
            json_headers,
            b'{"login": "sa-one", "password": "' + b"p" * 257 + b'"}',
            422,
            "invalid_input",
        ),
        (
            "POST",
            login,
            json_headers,
            b'{"login": "sa-one", "password": "x", "totp_code": "12a456"}',
            422,
            "invalid_input",
        ),
        (
            "POST",
            login,
            json_headers,
            b'{"login": "sa-one", "password": "x", "totp_code": 123456}',
            422,
            "invalid_input",
        ),
        (
            "POST",
            login,
            {"Content-Type": "text/plain"},
            b"login=sa-one",
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            login,
            json_headers,
            b'{"login": "x", "password": "' + b"p" * 2_000_000 + b'"}',
            413,
            "payload_too_large",
        ),
        ("GET", "/api/v1/me", {}, None, 401, "unauthenticated"),
        ("GET", "/api/v1/me", {"Authorization": "Basic abc"}, None, 401, "unauthenticated"),
        (
            "GET",
            "/api/v1/me",
            {"Authorization": "Bearer " + "z" * 500},
            None,
            401,
            "unauthenticated",
        ),
        ("GET", "/api/v1/me", {"Authorization": "Bearer anju_"}, None, 401, "unauthenticated"),
        ("GET", "/api/v1/me", {"Authorization": "Bearer anju_x_y"}, None, 401, "unauthenticated"),
        (
            "POST",
            "/api/v1/api-keys",
            {**json_headers, **bearer(token)},
            b'{"name": "k", "roles": "front_desk"}',
            422,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/api-keys",
            {**json_headers, **bearer(token)},
            b'{"name": "k", "roles": ["front_desk"], "ttl_days": "30"}',
            422,
            "invalid_input",
        ),
        (
            "POST",
            "/api/v1/api-keys",
            {**json_headers, **bearer(token)},
            b'{"name": "k", "roles": ["front_desk"], "ttl_days": 0}',
            422,
            "invalid_input",
        ),
    ]
    cases.append(
        ("GET", "/api/v1/accounts/" + "x" * 100, bearer(token), None, 422, "invalid_input")
    )
    for method, path, headers, content, status, code in cases:
        response = await client.request(method, path, headers=headers, content=content)
        assert response.status_code == status, (path, content and content[:80], response.text)
        assert error_code(response) == code, (path, content and content[:80], response.text)
        assert "Correct-Horse-42" not in response.text  # input is never echoed back
