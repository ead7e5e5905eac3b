"""``anju serve`` as an operator runs it: a real process on a real port, signals, refusals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from anju.audit import AuditLog, SignedCheckpoint
from anju.cli.serve import audit_checkpoints
from anju.kit.clock import FixedClock
from anju.kit.keyring import FileKeyProvider
from anju.platform import Platform
from tests.support.services import POSTGRES_URL, require_service, tcp_reachable

START_TIMEOUT = 30.0
ANJU = [sys.executable, "-c", "from anju.cli.main import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def anju_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJU_")}
    env["ANJU_MQTT_PORT"] = str(free_port())  # the embedded broker gets its own free port
    env.update(extra)
    return env


def run_anju(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ANJU, *args], env=env or anju_env(), capture_output=True, text=True, timeout=60
    )


class Served:
    """A running ``anju serve`` subprocess."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*ANJU, "serve", "--data-dir", str(data_dir), "--port", str(self.port), *extra],
            env=env or anju_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> httpx.Response:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                pytest.fail(f"anju serve exited {self.process.returncode}:\n{out}\n{err}")
            try:
                response = httpx.get(f"{self.base}/readyz", timeout=2)
                if response.status_code == 200:
                    return response
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail("anju serve did not become ready")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=20)
        return self.process.returncode, out, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path / "data", env=anju_env(ANJU_MAX_REQUEST_BYTES="2048"))
    try:
        yield server
    finally:
        server.kill()


@pytest.mark.req("R1", "R11", "R12", "R16")
@pytest.mark.slow
def test_serve_first_start_ready_docs_and_clean_sigterm(served: Served, tmp_path: Path) -> None:
    served.wait_ready()
    assert httpx.get(f"{served.base}/healthz").json() == {"status": "ok"}
    spec = httpx.get(f"{served.base}/openapi.json").json()
    assert "/readyz" in spec["paths"]
    docs = httpx.get(f"{served.base}/docs")
    assert docs.status_code == 200
    assert "https://" not in docs.text
    assert "http://" not in docs.text
    assert "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert httpx.get(f"{served.base}/docs-assets/swagger-ui-bundle.js").status_code == 200
    # The body limit (ANJU_MAX_REQUEST_BYTES=2048 here) holds on the real server too.
    refused = httpx.post(
        f"{served.base}/api/v1/anything",
        content=b"x" * 8192,
        headers={"content-type": "application/json"},
    )
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "payload_too_large"
    assert httpx.get(f"{served.base}/readyz?phone=13812345678").status_code == 200

    code, out, err = served.stop(signal.SIGTERM)
    assert code == 0, err
    assert f"listening on {served.base}" in out
    assert f"{served.base}/docs" in out
    assert "正在监听" in out
    # First start made the keyring (private) and the embedded database.
    key_file = tmp_path / "data" / "keys" / "keyring.json"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "anju.db").is_file()
    # Logs are JSON lines, and the query string with a phone number never reached them.
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines, err
    assert len(lines) == len(err.splitlines())
    assert any(e["logger"] == "anju.access" and e["path"] == "/readyz" for e in lines)
    assert "13812345678" not in err
    assert "Traceback" not in err
    # Once started, the start-up heap (modules, mappings, routes) is out of the collector's
    # reach: a full collection no longer stops the event loop to walk it (anju.kit.heap).
    frozen = [e["message"] for e in lines if "exempt from garbage collection" in e["message"]]
    assert len(frozen) == 1
    assert int(frozen[0].rsplit(" ", 2)[-2]) > 100_000, frozen


@pytest.mark.req("R1", "R11")
@pytest.mark.slow
def test_serve_restarts_on_existing_data_and_stops_on_sigint(tmp_path: Path) -> None:
    first = Served(tmp_path / "data")
    try:
        first.wait_ready()
        assert first.stop(signal.SIGTERM)[0] == 0
        second = Served(tmp_path / "data")
        second.wait_ready()
        code, _, err = second.stop(signal.SIGINT)
        assert code == 0, err
    finally:
        first.kill()


def _initialise(data_dir: Path) -> Path:
    result = run_anju("db", "upgrade", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    return data_dir / "keys" / "keyring.json"


def _serve_once(
    data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_anju("serve", "--data-dir", str(data_dir), "--port", str(free_port()), env=env)


@pytest.mark.req("L14", "R16")
def test_serve_refuses_a_key_file_others_can_read(tmp_path: Path) -> None:
    key_file = _initialise(tmp_path / "data")
    key_file.chmod(0o644)
    result = _serve_once(tmp_path / "data")
    assert result.returncode == 2
    assert "refusing to start" in result.stderr
    assert "chmod 600" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.req("L14", "R16")
def test_serve_refuses_when_the_key_file_is_gone(tmp_path: Path) -> None:
    key_file = _initialise(tmp_path / "data")
    key_file.unlink()
    result = _serve_once(tmp_path / "data")
    assert result.returncode == 2
    assert "refusing to start" in result.stderr
    assert "missing" in result.stderr
    assert "Traceback" not in result.stderr
    # And it did not paper over the loss with a fresh keyring.
    assert not key_file.exists()


@pytest.mark.req("L14", "R16")
@pytest.mark.slow
def test_serve_refuses_a_keyring_from_another_installation(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Served(data_dir)
    try:
        first.wait_ready()  # the first start records which master key this database uses
        assert first.stop()[0] == 0
    finally:
        first.kill()
    key_file = data_dir / "keys" / "keyring.json"
    key_file.unlink()
    FileKeyProvider.create(key_file)  # a valid keyring, but not this database's
    result = _serve_once(data_dir)
    assert result.returncode == 2, result.stderr
    assert "refusing to start" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.req("R1", "R16")
@pytest.mark.postgres
async def test_serve_refuses_postgres_schema_that_is_not_at_head(tmp_path: Path) -> None:
    parts = urlsplit(POSTGRES_URL.replace("+asyncpg", ""))
    require_service("PostgreSQL", tcp_reachable(parts.hostname or "127.0.0.1", parts.port or 5432))
    schema = f"anju_serve_{secrets.token_hex(6)}"
    admin = create_async_engine(POSTGRES_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        env = anju_env(ANJU_DATABASE_URL=f"{POSTGRES_URL}?search_path={schema}")
        result = _serve_once(tmp_path / "data", env=env)
        assert result.returncode == 2
        assert "anju db upgrade" in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "data" / "keys").exists()  # nothing created on refusal
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def _latest_checkpoint(platform: Platform) -> SignedCheckpoint | None:
    async with platform.db.transaction() as session:
        return await AuditLog(platform).latest_checkpoint(session)


@pytest.mark.req("L17", "F1")
async def test_background_job_signs_audit_checkpoints_when_due(
    platform: Platform, clock: FixedClock
) -> None:
    async with platform.db.transaction() as session:
        await AuditLog(platform).record(session, action="test.serve.event", actor="system")
    stop = asyncio.Event()
    job = asyncio.create_task(audit_checkpoints(platform, stop))
    try:
        await asyncio.sleep(1.5)  # at least one tick: the entry is not old enough yet
        assert await _latest_checkpoint(platform) is None
        clock.advance(seconds=platform.settings.audit_checkpoint_seconds + 1)
        deadline = time.monotonic() + 5
        checkpoint = None
        while checkpoint is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            checkpoint = await _latest_checkpoint(platform)
        assert checkpoint is not None
        assert checkpoint.size == 1
    finally:
        stop.set()
        await asyncio.wait_for(job, 3)  # the job stops promptly on shutdown


def _online_rooms(data_dir: Path) -> dict[str, bool]:
    """Place → online, read from the embedded database the way an operator would."""
    listing = run_anju("devices", "list", "--data-dir", str(data_dir))
    assert listing.returncode == 0, listing.stderr
    rows = [line.split("\t") for line in listing.stdout.splitlines()[1:] if line.strip()]
    return {row[5]: row[6] == "online" for row in rows}


@pytest.mark.req("R1", "R2", "R11", "L14")
@pytest.mark.slow
def test_demo_building_locks_connect_and_are_reused_on_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rooms = {"room:101": True, "room:102": True}
    for _ in range(2):  # first start makes the building; the second reuses it
        server = Served(data_dir, extra=("--demo-building", "2"))
        try:
            server.wait_ready()
            deadline = time.monotonic() + START_TIMEOUT
            while _online_rooms(data_dir) != rooms and time.monotonic() < deadline:
                time.sleep(0.5)
            assert _online_rooms(data_dir) == rooms
            code, out, err = server.stop()
            assert code == 0, err
            # The banner says where to look, including the fake regulator receiving reports.
            assert "fake regulator receiving the reports: http://127.0.0.1:" in out
            assert "anju demo --data-dir" in out
            # a clean stop ends the sessions: the registry shows the locks offline at once
            assert _online_rooms(data_dir) == dict.fromkeys(rooms, False)
        finally:
            server.kill()
    factory = data_dir / "demo" / "factory.json"
    assert oct(factory.stat().st_mode & 0o777) == "0o600"
    # The same demo data as `anju demo`: rooms with their locks bound, the hotel's notices.
    with contextlib.closing(sqlite3.connect(data_dir / "anju.db")) as db:
        counted = {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("property_rooms", "property_room_locks", "consent_notices")
        }
    assert counted == {"property_rooms": 2, "property_room_locks": 2, "consent_notices": 3}
    assert len(list((data_dir / "demo" / "se").iterdir())) == 2
