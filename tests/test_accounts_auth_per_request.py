"""Authentication is checked on every request, in one statement, with nothing cached: a
signed-out session, a removed role, a disabled account or organisation and an idle session are
refused on the very next request, and a platform-level account (no organisation) still works."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
from sqlalchemy import text

from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.accounts import make_admin
from tests.support.http import api_client, bearer, code_of, signed_in


async def run_sql(platform: Platform, statements: Sequence[str], **params: object) -> None:
    async with platform.db.transaction() as session:
        for statement in statements:
            await session.execute(text(statement), params)


async def me(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/api/v1/me", headers=headers)


@pytest.mark.req("F1", "R17")
async def test_changes_to_a_session_account_or_organisation_apply_to_the_next_request(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform)
    async with api_client(platform) as client:
        headers = await signed_in(client, clock, admin)
        first = await me(client, headers)
        assert first.status_code == 200
        assert first.json()["roles"] == ["security_admin"]

        await run_sql(platform, ["DELETE FROM role_assignments WHERE account_id = :a"], a=admin.id)
        no_roles = await me(client, headers)
        assert no_roles.status_code == 200
        assert no_roles.json()["roles"] == []
        assert (await client.get("/api/v1/accounts", headers=headers)).status_code == 403

        await run_sql(
            platform,
            ["UPDATE organisations SET disabled_at = created_at WHERE id = :o"],
            o=admin.org_id,
        )
        refused = await me(client, headers)
        assert refused.status_code == 401
        assert code_of(refused) == "unauthenticated"
        await run_sql(
            platform, ["UPDATE organisations SET disabled_at = NULL WHERE id = :o"], o=admin.org_id
        )
        assert (await me(client, headers)).status_code == 200

        await run_sql(
            platform, ["UPDATE accounts SET status = 'disabled' WHERE id = :a"], a=admin.id
        )
        assert (await me(client, headers)).status_code == 401
        await run_sql(platform, ["UPDATE accounts SET status = 'active' WHERE id = :a"], a=admin.id)
        assert (await me(client, headers)).status_code == 200

        assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
        signed_out = await me(client, headers)
        assert signed_out.status_code == 401
        assert code_of(signed_out) == "unauthenticated"


async def last_seen(platform: Platform) -> list[object]:
    async with platform.db.transaction() as session:
        rows = await session.execute(text("SELECT last_seen_at FROM login_sessions"))
        return [row[0] for row in rows]


@pytest.mark.req("F1")
async def test_an_idle_session_is_refused_and_activity_keeps_one_alive(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform)
    idle = platform.settings.session_idle_seconds
    async with api_client(platform) as client:
        headers = await signed_in(client, clock, admin, step_up=False)
        # The idle clock moves at most once a minute: within the minute nothing is written.
        recorded = await last_seen(platform)
        clock.advance(seconds=59)
        assert (await me(client, headers)).status_code == 200
        assert await last_seen(platform) == recorded
        clock.advance(seconds=2)
        assert (await me(client, headers)).status_code == 200
        assert await last_seen(platform) != recorded
        for _ in range(5):  # requests 50 s apart: some move the clock, none is refused
            clock.advance(seconds=50)
            assert (await me(client, headers)).status_code == 200
        for _ in range(3):  # each request moves the idle deadline on (ending at most 60 s early)
            clock.advance(seconds=idle - 60)
            assert (await me(client, headers)).status_code == 200
        clock.advance(seconds=idle)
        assert (await me(client, headers)).status_code == 401
        garbage = await me(client, bearer("0" * 64))
        assert garbage.status_code == 401


@pytest.mark.req("F1")
async def test_a_platform_level_account_without_organisation_authenticates(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform, login="sa-platform", org=None)
    async with api_client(platform) as client:
        headers = await signed_in(client, clock, admin, step_up=False)
        response = await me(client, headers)
    assert response.status_code == 200
    assert response.json()["roles"] == ["security_admin"]
