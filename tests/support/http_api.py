"""Helpers for tests that call the HTTP API: bearer headers, error codes, signing in."""

from __future__ import annotations

from typing import Any

import httpx

from anju.accounts import totp
from anju.kit.clock import FixedClock
from tests.support.accounts import PASSWORD, Admin


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def code_of(response: httpx.Response) -> str:
    """The stable error code of an error response."""
    body: dict[str, Any] = response.json()
    return str(body["error"]["code"])


async def signed_in(
    client: httpx.AsyncClient, clock: FixedClock, admin: Admin, *, step_up: bool = True
) -> dict[str, str]:
    """Sign ``admin`` in over HTTP (and, by default, pass the second factor); the headers."""
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
