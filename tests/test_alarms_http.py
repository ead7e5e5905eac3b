"""Alarm lifecycle over HTTP and the live SSE stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from anju.alarms.service import raise_platform_alarm
from anju.app import create_app
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.http import api_client, code_of, signed_in
from tests.support.records import Door, door
from tests.support.registry import audit_entries


async def raise_one(platform: Platform, d: Door) -> str:
    async with platform.db.transaction() as session:
        alarm = await raise_platform_alarm(
            platform, session, org_id=d.org_id, kind="abnormal_grant", device_id=d.lock.device_id
        )
        return alarm.id


@pytest.mark.req("R2", "L17", "R9")
async def test_acknowledge_then_clear_audited_and_isolated(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    a = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    b = await door(platform, clock, tmp_path, login="sa-b", org="Org B", room="B-101")
    alarm_id = await raise_one(platform, a)
    assert await raise_one(platform, a) == alarm_id  # a repeat of the open alarm is counted
    async with api_client(platform) as client:
        ha = await signed_in(client, clock, a.tenant.admin, step_up=False)
        hb = await signed_in(client, clock, b.tenant.admin, step_up=False)
        listed = (await client.get("/api/v1/alarms", headers=ha)).json()
        assert [(x["id"], x["count"], x["status"], x["title_zh"]) for x in listed] == [
            (alarm_id, 2, "active", "异常授权")
        ]
        assert (await client.get("/api/v1/alarms", headers=hb)).json() == []
        response = await client.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json={}, headers=hb)
        assert response.status_code == 404
        response = await client.post(
            f"/api/v1/alarms/{alarm_id}/acknowledge", json={"note": "on my way"}, headers=ha
        )
        assert response.json()["status"] == "acknowledged"
        response = await client.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json={}, headers=ha)
        assert code_of(response) == "alarm_state_conflict"
        response = await client.post(f"/api/v1/alarms/{alarm_id}/clear", json={}, headers=ha)
        assert response.json()["status"] == "cleared"
        assert response.json()["cleared_by"].startswith("account:")
        response = await client.post(f"/api/v1/alarms/{alarm_id}/clear", json={}, headers=ha)
        assert response.status_code == 409
        assert (await client.get("/api/v1/alarms")).status_code == 401
    assert len(await audit_entries(platform, "alarms.acknowledged")) == 1
    assert len(await audit_entries(platform, "alarms.cleared")) == 1


@contextlib.asynccontextmanager
async def live_server(platform: Platform) -> AsyncIterator[str]:
    # log_config=None: uvicorn's default dictConfig would rewire the process's loggers.
    config = uvicorn.Config(
        create_app(platform), host="127.0.0.1", port=0, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no start event
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.mark.req("L17", "R2")
async def test_stream_pushes_a_new_alarm_within_a_second(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    a = await door(platform, clock, tmp_path, login="sa-a", org="Org A", room="A-301")
    b = await door(platform, clock, tmp_path, login="sa-b", org="Org B", room="B-101")
    async with live_server(platform) as base, httpx.AsyncClient(base_url=base) as client:
        headers = await signed_in(client, clock, a.tenant.admin, step_up=False)
        response = await client.get("/api/v1/alarms/stream")
        assert response.status_code == 401
        async with client.stream("GET", "/api/v1/alarms/stream", headers=headers) as stream:
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            loop = asyncio.get_running_loop()
            await raise_one(platform, b)  # another organisation's: never shown
            started = loop.time()
            alarm_id = await raise_one(platform, a)
            while True:
                line = await asyncio.wait_for(anext(lines), timeout=5)
                if line.startswith("data:"):
                    break
            elapsed = loop.time() - started
    event = json.loads(line.removeprefix("data:"))
    assert event["change"] == "raised"
    assert event["alarm"]["id"] == alarm_id
    assert elapsed < 1.0
