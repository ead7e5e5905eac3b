"""/api/v1/leases over HTTP: a manager creates and activates a lease (second factor), a payment
integration posts payments without one (replays answered, applied once), readers read, others
are refused and another organisation's leases are 404; malformed input is 422."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.access import manager, stepped_up
from tests.support.accounts import login_token, make_member_with_role
from tests.support.http import api_client, bearer, code_of
from tests.support.leases import LeaseWorld, lease_world
from tests.support.registry import audit_entries

BASE = "/api/v1/leases"


@pytest.fixture
async def w(platform: Platform, clock: FixedClock, tmp_path: Path) -> LeaseWorld:
    return await lease_world(platform, clock, tmp_path)


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(platform) as c:
        yield c


def lease_body(w: LeaseWorld, **change: Any) -> dict[str, Any]:
    body = {
        "room_id": w.tree.room_id,
        "tenants": w.tenants,
        "start_date": "2026-01-01",
        "end_date": "2026-06-30",
        "monthly_rent_fen": 250_000,
        "due_day": 1,
    }
    body.update(change)
    return body


def pay_body(amount: int, key: str = "n-1", **change: Any) -> dict[str, Any]:
    body = {
        "amount_fen": amount,
        "paid_at": "2026-01-02T10:00:00+08:00",
        "reference": f"wx-{key}",
        "idempotency_key": key,
    }
    body.update(change)
    return body


@pytest.mark.req("R13", "R14", "R17")
async def test_lease_lifecycle_over_http(
    platform: Platform, clock: FixedClock, w: LeaseWorld, client: httpx.AsyncClient
) -> None:
    pm = await manager(platform, clock, w.access.a.admin, "pm-a")
    h = await stepped_up(client, clock, pm)
    response = await client.post(BASE, json=lease_body(w), headers=h)
    assert response.status_code == 201, response.text
    lease = response.json()
    assert (lease["status"], len(lease["instalments"]), lease["grace_days"]) == ("draft", 6, 5)
    assert lease["outstanding_fen"] == 6 * 250_000
    response = await client.post(f"{BASE}/{lease['id']}/activate", headers=h)
    assert response.json()["status"] == "active"
    assert response.json()["tenants"][0]["grant_id"]

    # Payments need no second factor (a payment integration posts them); replays answer 200.
    clock.advance(seconds=600)
    plain = bearer(pm.token)
    response = await client.post(
        f"{BASE}/{lease['id']}/payments", json=pay_body(250_000), headers=plain
    )
    assert (response.status_code, response.json()["replayed"]) == (201, False)
    response = await client.post(
        f"{BASE}/{lease['id']}/payments", json=pay_body(250_000), headers=plain
    )
    assert (response.status_code, response.json()["replayed"]) == (200, True)
    response = await client.get(f"{BASE}/{lease['id']}", headers=plain)
    assert response.json()["outstanding_fen"] == 5 * 250_000
    assert len(response.json()["payments"]) == 1
    # Terminating needs the second factor again.
    response = await client.post(
        f"{BASE}/{lease['id']}/terminate", json={"reason": "退租 / moved out"}, headers=plain
    )
    assert (response.status_code, code_of(response)) == (403, "second_factor_required")
    h = await stepped_up(client, clock, pm)
    response = await client.post(
        f"{BASE}/{lease['id']}/terminate", json={"reason": "退租 / moved out"}, headers=h
    )
    assert response.json()["status"] == "terminated"
    listed = await client.get(BASE, params={"status": "terminated"}, headers=h)
    assert [x["id"] for x in listed.json()] == [lease["id"]]
    response = await client.put(f"{BASE}/settings", json={"grace_days": 7}, headers=h)
    assert response.json() == {"grace_days": 7}
    assert (await client.get(f"{BASE}/settings", headers=h)).json() == {"grace_days": 7}


@pytest.mark.req("R13", "R14", "R17")
async def test_refusals_isolation_and_malformed_input(
    platform: Platform, clock: FixedClock, w: LeaseWorld, client: httpx.AsyncClient
) -> None:
    pm = await manager(platform, clock, w.access.a.admin, "pm-a")
    h = await stepped_up(client, clock, pm)
    lease = (await client.post(BASE, json=lease_body(w), headers=h)).json()
    # A landlord reads (stays.read) but does not change.
    admin_token = await login_token(platform, w.access.a.admin.login)
    landlord = bearer(
        await make_member_with_role(
            platform, clock, w.access.a.admin, admin_token, "ll-a", "landlord"
        )
    )
    assert (await client.get(f"{BASE}/{lease['id']}", headers=landlord)).status_code == 200
    response = await client.post(
        f"{BASE}/{lease['id']}/payments", json=pay_body(1), headers=landlord
    )
    assert response.status_code == 403
    assert [e.outcome for e in await audit_entries(platform, "leases.payment.recorded")] == [
        "denied"
    ]
    # The security administrator holds no stays capability.
    assert (await client.get(BASE, headers=bearer(w.access.a.token))).status_code == 403
    # Organisation B sees nothing of A's.
    pm_b = await manager(platform, clock, w.access.b.admin, "pm-b")
    hb = await stepped_up(client, clock, pm_b)
    response = await client.get(f"{BASE}/{lease['id']}", headers=hb)
    assert (response.status_code, code_of(response)) == (404, "lease_not_found")
    response = await client.post(BASE, json=lease_body(w), headers=hb)
    assert (response.status_code, code_of(response)) == (404, "room_not_found")
    # Malformed and oversized input.
    h = await stepped_up(client, clock, pm)
    for body in (
        lease_body(w, start_date="2026-13-01"),
        lease_body(w, tenants=[]),
        lease_body(w, tenants=["x"] * 9),
        lease_body(w, monthly_rent_fen="lots"),
        lease_body(w, extra=True),
        lease_body(w, room_id="r" * 37),
    ):
        response = await client.post(BASE, json=body, headers=h)
        assert response.status_code == 422, body
    response = await client.post(f"{BASE}/{lease['id']}/activate", headers=h)
    assert response.status_code == 200
    for body in (
        pay_body(1, paid_at="2026-01-02T10:00:00"),  # no offset
        pay_body(1, reference="r" * 65),
        pay_body(1, key="k" * 65),
    ):
        response = await client.post(f"{BASE}/{lease['id']}/payments", json=body, headers=h)
        assert response.status_code == 422, body
    response = await client.post(f"{BASE}/{lease['id']}/payments", json=pay_body(10**12), headers=h)
    assert (response.status_code, code_of(response)) == (409, "overpayment")
