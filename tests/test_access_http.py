"""/api/v1/access over HTTP: person-type limits, second factor, capability, organisation
isolation, freeze and unfreeze reaching every lock of the person, anomalies, expiry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from anju.access.expiry import expire_due
from anju.accounts import totp
from anju.alarms.models import Alarm
from anju.alarms.rules import ABNORMAL_GRANT
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.access import DROP_COMMAND, FREEZE_COMMAND, UNFREEZE_COMMAND
from tests.support.access import AccessWorld, Manager, access_world, commands_of, manager
from tests.support.http import api_client, bearer, code_of
from tests.support.registry import audit_entries

BASE = "/api/v1/access"


@pytest.fixture
async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> AccessWorld:
    return await access_world(platform, clock, tmp_path)


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(platform) as c:
        yield c


async def stepped_up(client: httpx.AsyncClient, clock: FixedClock, m: Manager) -> dict[str, str]:
    clock.advance(seconds=totp.STEP_SECONDS)
    headers = bearer(m.token)
    code = totp.code_at(m.secret, clock.now())
    response = await client.post("/api/v1/auth/second-factor", json={"code": code}, headers=headers)
    assert response.status_code == 200, response.text
    return headers


def grant_body(clock: FixedClock, w: AccessWorld, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject_id": "guest-7",
        "person_type": "guest",
        "doors": {"device_ids": [w.room.device_id, w.entrance.device_id]},
        "valid_until": (clock.now() + timedelta(days=2)).isoformat(),
    }
    body.update(extra)
    return body


@pytest.mark.req("L15", "L13", "R17")
async def test_changes_need_the_capability_and_a_fresh_second_factor(
    platform: Platform, clock: FixedClock, world: AccessWorld, client: httpx.AsyncClient
) -> None:
    pm = await manager(platform, clock, world.a.admin, "pm-a")
    clock.advance(seconds=600)  # the enrolment's second factor is no longer recent
    response = await client.post(
        f"{BASE}/grants", json=grant_body(clock, world), headers=bearer(pm.token)
    )
    assert response.status_code == 403
    assert code_of(response) == "second_factor_required"
    # The security administrator runs devices but does not hold access.manage.
    response = await client.post(
        f"{BASE}/grants", json=grant_body(clock, world), headers=bearer(world.a.token)
    )
    assert response.status_code == 403
    assert code_of(response) == "forbidden"
    denied = await audit_entries(platform, "access.grant.created")
    assert [e.outcome for e in denied] == ["denied", "denied"]

    headers = await stepped_up(client, clock, pm)
    response = await client.post(f"{BASE}/grants", json=grant_body(clock, world), headers=headers)
    assert response.status_code == 201, response.text
    grant = response.json()
    response = await client.post(
        f"{BASE}/grants/{grant['id']}/credentials", json={"kind": "passcode"}, headers=headers
    )
    assert response.status_code == 201, response.text
    assert len(response.json()["passcode"]) == 8
    cred_id = response.json()["credential"]["id"]
    response = await client.get(f"{BASE}/credentials/{cred_id}", headers=headers)
    assert "passcode" not in response.json()  # shown once, at issue only
    response = await client.get(f"{BASE}/credentials/{cred_id}/deliveries", headers=headers)
    assert {d["state"] for d in response.json()} == {"queued"}


@pytest.mark.req("L15", "L13")
async def test_person_types_bound_the_grant(
    platform: Platform, clock: FixedClock, world: AccessWorld, client: httpx.AsyncClient
) -> None:
    pm = await manager(platform, clock, world.a.admin, "pm-a")
    headers = await stepped_up(client, clock, pm)
    refused = [
        grant_body(clock, world, valid_until=None),  # a guest needs an end
        grant_body(clock, world, person_type="visitor"),  # two days > a visitor's 24 h
        grant_body(clock, world, person_type="staff"),  # staff need a shift schedule
        grant_body(clock, world, valid_until="2026-01-05T00:00:00"),  # no UTC offset
    ]
    for body in refused:
        response = await client.post(f"{BASE}/grants", json=body, headers=headers)
        assert response.status_code == 422, body
        assert code_of(response) == "invalid_input"
    owner = grant_body(clock, world, person_type="owner", valid_until=None)
    response = await client.post(f"{BASE}/grants", json=owner, headers=headers)
    assert response.status_code == 201
    assert response.json()["valid_until"] is None
    staff = grant_body(
        clock,
        world,
        person_type="staff",
        schedule={"weekdays": 31, "start_minute": 480, "end_minute": 1080},
    )
    response = await client.post(f"{BASE}/grants", json=staff, headers=headers)
    assert response.status_code == 201
    by_place = grant_body(clock, world, doors={"place_kind": "building_entrance"})
    response = await client.post(f"{BASE}/grants", json=by_place, headers=headers)
    assert response.json()["device_ids"] == [world.entrance.device_id]


@pytest.mark.req("L15", "R9")
async def test_another_organisations_objects_are_not_found(
    platform: Platform, clock: FixedClock, world: AccessWorld, client: httpx.AsyncClient
) -> None:
    pm_a = await manager(platform, clock, world.a.admin, "pm-a")
    pm_b = await manager(platform, clock, world.b.admin, "pm-b")
    headers_a = await stepped_up(client, clock, pm_a)
    headers_b = await stepped_up(client, clock, pm_b)
    response = await client.post(f"{BASE}/grants", json=grant_body(clock, world), headers=headers_a)
    grant_id = response.json()["id"]
    for method, path in [
        ("GET", f"{BASE}/grants/{grant_id}"),
        ("POST", f"{BASE}/grants/{grant_id}/revoke"),
    ]:
        response = await client.request(method, path, headers=headers_b)
        assert response.status_code == 404
    response = await client.post(
        f"{BASE}/grants/{grant_id}/credentials", json={"kind": "passcode"}, headers=headers_b
    )
    assert response.status_code == 404
    # Org B cannot grant org A's lock either.
    response = await client.post(f"{BASE}/grants", json=grant_body(clock, world), headers=headers_b)
    assert response.status_code == 404


@pytest.mark.req("R14", "L13", "R17")
async def test_freeze_reaches_every_lock_of_the_person_and_unfreeze_follows(
    platform: Platform, clock: FixedClock, world: AccessWorld, client: httpx.AsyncClient
) -> None:
    pm = await manager(platform, clock, world.a.admin, "pm-a")
    headers = await stepped_up(client, clock, pm)
    grant = (
        await client.post(f"{BASE}/grants", json=grant_body(clock, world), headers=headers)
    ).json()
    await client.post(
        f"{BASE}/grants/{grant['id']}/credentials", json={"kind": "passcode"}, headers=headers
    )
    response = await client.post(
        f"{BASE}/freezes", json={"subject_id": "guest-7", "reason": "arrears"}, headers=headers
    )
    assert response.status_code == 201, response.text
    frozen = response.json()
    assert frozen["status"] == "frozen"
    assert {(op["device_id"], op["op"], op["state"]) for op in frozen["locks"]} == {
        (world.room.device_id, "freeze", "queued"),
        (world.entrance.device_id, "freeze", "queued"),
    }
    for lock in (world.room, world.entrance):
        (command,) = await commands_of(platform, lock.device_id, FREEZE_COMMAND)
        assert command.args == '{"subject":"guest-7"}'
    response = await client.post(
        f"{BASE}/grants/{grant['id']}/credentials", json={"kind": "passcode"}, headers=headers
    )
    assert response.status_code == 409
    assert code_of(response) == "access_frozen"
    response = await client.post(
        f"{BASE}/freezes", json={"subject_id": "guest-7", "reason": "arrears"}, headers=headers
    )
    assert response.status_code == 409

    clock.advance(seconds=600)
    response = await client.post(f"{BASE}/freezes/{frozen['id']}/lift", headers=headers)
    assert code_of(response) == "second_factor_required"
    headers = await stepped_up(client, clock, pm)
    response = await client.post(f"{BASE}/freezes/{frozen['id']}/lift", headers=headers)
    assert response.json()["status"] == "lifted"
    assert len(await commands_of(platform, world.room.device_id, UNFREEZE_COMMAND)) == 1
    assert [e.outcome for e in await audit_entries(platform, "access.freeze.frozen")] == ["success"]


@pytest.mark.req("L15", "L17")
async def test_mass_long_and_self_grants_are_flagged_and_expired_grants_are_dropped(
    platform: Platform, clock: FixedClock, world: AccessWorld, client: httpx.AsyncClient
) -> None:
    pm = await manager(platform, clock, world.a.admin, "pm-a")
    headers = await stepped_up(client, clock, pm)
    long = grant_body(clock, world, valid_until=(clock.now() + timedelta(days=60)).isoformat())
    assert (await client.post(f"{BASE}/grants", json=long, headers=headers)).json()[
        "anomalies"
    ] == ["long_grant"]
    own = grant_body(clock, world, subject_id=pm.account_id[:64].replace(".", "-"))
    assert (
        "self_grant"
        in (await client.post(f"{BASE}/grants", json=own, headers=headers)).json()["anomalies"]
    )
    for n in range(20):
        body = grant_body(clock, world, subject_id=f"guest-m{n}")
        last = (await client.post(f"{BASE}/grants", json=body, headers=headers)).json()
    assert "mass_grant" in last["anomalies"]
    kinds = {a["kind"] for a in (await client.get(f"{BASE}/anomalies", headers=headers)).json()}
    assert kinds == {"long_grant", "self_grant", "mass_grant"}
    assert len(await audit_entries(platform, "access.anomaly.long_grant")) == 1
    # Each one also raises an operator alarm (console stream and webhooks), in org A only.
    async with platform.db.transaction() as session:
        alarms = (
            (await session.execute(select(Alarm).where(Alarm.kind == ABNORMAL_GRANT)))
            .scalars()
            .all()
        )
    assert {a.org_id for a in alarms} == {world.org_a}
    assert {json.loads(a.details)["anomaly"] for a in alarms} == kinds

    await client.post(
        f"{BASE}/grants/{last['id']}/credentials", json={"kind": "passcode"}, headers=headers
    )
    clock.advance(days=3)
    result = await expire_due(platform)
    assert result.expired_grants == 21  # the 60-day grant is still running
    assert result.ended_credentials == 1
    assert len(await commands_of(platform, world.room.device_id, DROP_COMMAND)) == 1
    expired = await audit_entries(platform, "access.grant.expired")
    assert len(expired) == 21
