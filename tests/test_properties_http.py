"""/api/v1/properties over HTTP: a manager with a fresh second factor builds the tree and binds
locks; readers read; others are refused (audited); another organisation's ids are 404; malformed,
oversized and injected input is refused with stable codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.access import AccessWorld, access_world, manager, stepped_up
from tests.support.http import api_client, bearer, code_of, front_desk_headers
from tests.support.properties import property_tree
from tests.support.registry import audit_entries

BASE = "/api/v1/properties"
SITE: dict[str, Any] = {
    "kind": "hotel",
    "name": "西湖酒店",
    "region_code": "330106",
    "address": {"province": "浙江省", "city": "杭州市", "district": "西湖区", "road": "北山街1号"},
}


@pytest.fixture
async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> AccessWorld:
    return await access_world(platform, clock, tmp_path)


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(platform) as c:
        yield c


async def created(client: httpx.AsyncClient, path: str, body: Any, headers: Any) -> Any:
    response = await client.post(f"{BASE}{path}", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.req("R10", "R13", "L1")
async def test_a_manager_builds_a_hotel_and_binds_its_locks(
    platform: Platform, clock: FixedClock, world: AccessWorld, client: httpx.AsyncClient
) -> None:
    pm = await manager(platform, clock, world.a.admin, "pm-a")
    h = await stepped_up(client, clock, pm)
    site = await created(client, "/sites", SITE, h)
    building = await created(client, f"/sites/{site['id']}/buildings", {"name": "主楼"}, h)
    unit = await created(client, f"/buildings/{building['id']}/units", {"name": "1单元"}, h)
    room = await created(
        client, f"/units/{unit['id']}/rooms", {"number": "8808", "floor": 8, "kind": "suite"}, h
    )
    response = await client.put(
        f"{BASE}/rooms/{room['id']}/locks/{world.room.device_id}", headers=h
    )
    assert response.status_code == 200, response.text
    group = await created(
        client, "/door-groups", {"scope": "site", "scope_id": site["id"], "name": "大堂门"}, h
    )
    response = await client.put(
        f"{BASE}/door-groups/{group['id']}/doors/{world.entrance.device_id}", headers=h
    )
    assert response.json()["doors"] == [world.entrance.device_id]

    response = await client.get(f"{BASE}/rooms/{room['id']}", headers=h)
    detail = response.json()
    assert detail["standard_address"] == "浙江省杭州市西湖区北山街1号主楼1单元8808室"
    assert (detail["room_locks"], detail["common_doors"]) == (
        [world.room.device_id],
        [world.entrance.device_id],
    )
    listed = await client.get(f"{BASE}/sites", headers=h)
    assert [s["name"] for s in listed.json()] == ["西湖酒店"]
    response = await client.patch(
        f"{BASE}/sites/{site['id']}", json={"name": "西湖宾馆"}, headers=h
    )
    assert response.json()["name"] == "西湖宾馆"
    response = await client.delete(f"{BASE}/units/{unit['id']}", headers=h)
    assert (response.status_code, code_of(response)) == (409, "property_not_empty")
    response = await client.delete(
        f"{BASE}/rooms/{room['id']}/locks/{world.room.device_id}", headers=h
    )
    assert response.status_code == 204
    assert (await client.delete(f"{BASE}/rooms/{room['id']}", headers=h)).status_code == 204
    assert (await client.get(f"{BASE}/rooms/{room['id']}", headers=h)).status_code == 404
    entries = await audit_entries(platform, "properties.room.lock_bound")
    assert [e.actor for e in entries] == [f"account:{pm.account_id}"]


@pytest.mark.req("R10", "R13", "R17")
async def test_capabilities_second_factor_and_organisation_isolation(
    platform: Platform, clock: FixedClock, world: AccessWorld, client: httpx.AsyncClient
) -> None:
    tree = await property_tree(platform, world.org_a)
    pm = await manager(platform, clock, world.a.admin, "pm-a")
    clock.advance(seconds=600)  # the enrolment's second factor is no longer recent
    response = await client.post(f"{BASE}/sites", json=SITE, headers=bearer(pm.token))
    assert (response.status_code, code_of(response)) == (403, "second_factor_required")
    # Reading needs no second factor.
    response = await client.get(f"{BASE}/rooms/{tree.room_id}", headers=bearer(pm.token))
    assert response.status_code == 200
    # Front desk reads (properties.read) but does not change; the security admin does neither.
    desk = await front_desk_headers(platform, clock, world.a.admin, "desk-a")
    assert (await client.get(f"{BASE}/units/{tree.unit_id}/rooms", headers=desk)).status_code == 200
    response = await client.post(
        f"{BASE}/units/{tree.unit_id}/rooms", json={"number": "1", "floor": 1}, headers=desk
    )
    assert response.status_code == 403
    response = await client.get(f"{BASE}/sites", headers=bearer(world.a.token))
    assert response.status_code == 403
    entries = await audit_entries(platform, "properties.room.created")
    assert [e.outcome for e in entries] == ["success", "denied"]  # the tree, then the desk
    # Organisation B's manager sees none of A's tree, and cannot bind A's lock.
    pm_b = await manager(platform, clock, world.b.admin, "pm-b")
    hb = await stepped_up(client, clock, pm_b)
    for path in (
        f"/sites/{tree.site_id}",
        f"/buildings/{tree.building_id}",
        f"/units/{tree.unit_id}",
        f"/rooms/{tree.room_id}",
        f"/units/{tree.unit_id}/rooms",
    ):
        response = await client.get(f"{BASE}{path}", headers=hb)
        assert response.status_code == 404, path
    response = await client.delete(f"{BASE}/sites/{tree.site_id}", headers=hb)
    assert (response.status_code, code_of(response)) == (404, "site_not_found")
    tree_b = await property_tree(platform, world.org_b)
    response = await client.put(
        f"{BASE}/rooms/{tree_b.room_id}/locks/{world.room.device_id}", headers=hb
    )
    assert (response.status_code, code_of(response)) == (404, "lock_not_found")


@pytest.mark.req("R10", "R13")
async def test_malformed_oversized_and_injected_input(
    platform: Platform, clock: FixedClock, world: AccessWorld, client: httpx.AsyncClient
) -> None:
    tree = await property_tree(platform, world.org_a)
    pm = await manager(platform, clock, world.a.admin, "pm-a")
    h = await stepped_up(client, clock, pm)
    cases: list[tuple[dict[str, Any], str]] = [
        ({**SITE, "region_code": "33010"}, "invalid_region_code"),
        ({**SITE, "name": "n" * 101}, "invalid_input"),  # pydantic bound
        ({**SITE, "name": "'; DROP TABLE property_sites; --"}, "invalid_name"),
        ({**SITE, "name": "<img src=x onerror=alert(1)>"}, "invalid_name"),
        ({**SITE, "kind": "palace"}, "invalid_input"),
        ({**SITE, "extra": 1}, "invalid_input"),
        ({**SITE, "address": {"province": "浙江省", "road": "x" * 5000}}, "invalid_input"),
    ]
    for body, code in cases:
        response = await client.post(f"{BASE}/sites", json=body, headers=h)
        assert response.status_code == 422, body
        assert code_of(response) == code, response.text
    response = await client.post(
        f"{BASE}/units/{tree.unit_id}/rooms", json={"number": "1201", "floor": 12}, headers=h
    )
    assert (response.status_code, code_of(response)) == (409, "room_number_taken")
    response = await client.get(f"{BASE}/rooms/{'r' * 65}", headers=h)
    assert response.status_code == 422
    response = await client.put(f"{BASE}/rooms/{tree.room_id}/locks/{'%27%3B--'}", headers=h)
    assert (response.status_code, code_of(response)) == (404, "lock_not_found")
    listed = await client.get(f"{BASE}/sites", headers=h)
    assert len(listed.json()) == 1
