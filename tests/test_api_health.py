"""Liveness and readiness probes: what an orchestrator or load balancer relies on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from anju.api.health import migration_heads
from anju.app import create_app
from anju.db import Database
from anju.kit.clock import FixedClock
from anju.migrations import upgrade
from anju.platform import Platform, open_key_provider
from anju.settings import Settings


def client_for(platform: Platform) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(platform))
    return httpx.AsyncClient(transport=transport, base_url="http://anju.test")


@pytest.fixture
async def unmigrated(settings: Settings, clock: FixedClock) -> AsyncIterator[Platform]:
    """A platform whose database exists but has never been migrated."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        yield Platform(settings, db, open_key_provider(settings, create=True), clock)
    finally:
        await db.dispose()


@pytest.mark.req("R11")
async def test_ready_when_database_is_migrated(platform: Platform) -> None:
    async with client_for(platform) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": {"ok": True}, "migrations": {"ok": True}, "keys": {"ok": True}},
    }


@pytest.mark.req("R11")
async def test_not_ready_before_migrations(unmigrated: Platform) -> None:
    async with client_for(unmigrated) as client:
        response = await client.get("/readyz")
        liveness = await client.get("/healthz")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    checks = error["details"]["checks"]
    assert checks["database"] == {"ok": True}
    assert checks["migrations"]["ok"] is False
    assert "anju db upgrade" in checks["migrations"]["reason"]
    assert liveness.status_code == 200  # alive, just not ready


@pytest.mark.req("R11")
async def test_not_ready_when_schema_is_behind_this_build(unmigrated: Platform) -> None:
    await upgrade(unmigrated.db, "0001")
    assert migration_heads() != {"0001"}
    async with client_for(unmigrated) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    reason = response.json()["error"]["details"]["checks"]["migrations"]["reason"]
    assert reason.startswith("schema at 0001, this build needs ")


@pytest.mark.req("R11", "R16")
async def test_not_ready_when_database_unreachable(tmp_path: Path, clock: FixedClock) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    missing = tmp_path / "no" / "such" / "dir" / "anju.db"
    db = Database(f"sqlite+aiosqlite:///{missing}")
    platform = Platform(settings, db, open_key_provider(settings, create=True), clock)
    try:
        async with client_for(platform) as client:
            response = await client.get("/readyz")
            liveness = await client.get("/healthz")
    finally:
        await db.dispose()
    assert response.status_code == 503
    checks = response.json()["error"]["details"]["checks"]
    assert checks["database"]["ok"] is False
    assert checks["keys"] == {"ok": True}
    assert str(tmp_path) not in response.text  # no paths or URLs leave the server
    assert liveness.status_code == 200
    assert liveness.json() == {"status": "ok"}
