"""HTTP test helpers: an in-process client of the app, bearer headers, error codes, sign-in."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from anju.accounts import totp
from anju.app import create_app
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.accounts import PASSWORD, Admin, login_token, make_member_with_role


@contextlib.asynccontextmanager
async def api_client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to ``create_app(platform)`` in-process."""
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://anju.test") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def code_of(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    return str(body["error"]["code"])


async def signed_in(
    client: httpx.AsyncClient, clock: FixedClock, admin: Admin, *, step_up: bool = True
) -> dict[str, str]:
    """Headers of ``admin`` signed in over HTTP (with a fresh second factor unless told not to)."""
    response = await client.post(
        "/api/v1/auth/login", json={"login": admin.login, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    headers = bearer(response.json()["token"])
    if step_up:
        clock.advance(seconds=totp.STEP_SECONDS)
        response = await client.post(
            "/api/v1/auth/second-factor",
            json={"code": totp.code_at(admin.secret, clock.now())},
            headers=headers,
        )
        assert response.status_code == 200, response.text
    return headers


async def front_desk_headers(
    platform: Platform, clock: FixedClock, admin: Admin, login: str
) -> dict[str, str]:
    """Bearer headers of a new front-desk clerk of ``admin``'s organisation."""
    token = await login_token(platform, admin.login)
    return bearer(await make_member_with_role(platform, clock, admin, token, login, "front_desk"))
