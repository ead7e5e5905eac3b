"""``anju serve``: run the platform (HTTP API, MQTT gateway, background jobs) in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Generator
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from anju.api.health import migration_heads
from anju.audit import AuditLog
from anju.background import serve_background
from anju.cli.common import DataDirOption, fail
from anju.cli.demo import DEMO_ORGANISATION, demo_regulator
from anju.cli.demo import demo_building as demo_locks
from anju.db import Database
from anju.errors import AnjuError, ConfigurationError
from anju.gateway.metrics import GatewayCollector
from anju.gateway.runner import Gateway, serve_gateway
from anju.kit import aio
from anju.kit.aio import wait_any
from anju.kit.heap import freeze_startup_heap
from anju.kit.jsonlog import configure_logging
from anju.migrations import current_revisions, upgrade
from anju.platform import Platform, open_platform
from anju.privacy.vault import PIVault
from anju.retention.policies import resolve_policies
from anju.settings import Settings, load_settings

logger = logging.getLogger("anju.serve")

CHECKPOINT_INTERVAL_SECONDS = 1.0
EXIT_CONFIGURATION = 2

HostOption = Annotated[
    str | None,
    typer.Option("--host", help="Address to listen on. Default 127.0.0.1 or $ANJU_HOST."),
]
PortOption = Annotated[
    int | None,
    typer.Option("--port", min=0, max=65535, help="TCP port. Default 8000 or $ANJU_PORT."),
]


DemoOption = Annotated[
    int,
    typer.Option(
        "--demo-building",
        min=0,
        max=200,
        help="Also run a simulated building of N locks on the embedded broker (made once, "
        "kept under <data-dir>/demo/) and, unless a regulator is configured, a fake regulator "
        "receiving the reports on loopback. `make run` uses 12. 0: none.",
    ),
]


def serve(
    data_dir: DataDirOption = None,
    host: HostOption = None,
    port: PortOption = None,
    demo_building: DemoOption = 0,
) -> None:
    """启动平台 / Start the platform: HTTP API, docs at /docs, health at /healthz and /readyz.

    On the embedded default (SQLite) the first start creates the keyring and the schema. On
    PostgreSQL the schema must already be current (`anju db upgrade`).
    """
    try:
        settings = load_settings(data_dir=data_dir, host=host, port=port)
    except Exception as exc:  # pydantic ValidationError, bad TOML, missing config file
        fail(f"configuration error: {exc}", code=EXIT_CONFIGURATION)
    configure_logging(settings.log_level, json_output=settings.log_json)
    try:
        aio.run(run_server(settings, demo_building=demo_building))
    except ConfigurationError as exc:
        fail(f"拒绝启动 / refusing to start: {exc.message}", code=EXIT_CONFIGURATION)
    except AnjuError as exc:
        fail(f"{exc.message} [{exc.code}]")


async def run_server(settings: Settings, *, demo_building: int = 0) -> None:
    """Prepare the database and keys, then serve until SIGTERM/SIGINT."""
    fresh = await prepare_schema(settings)
    # Keys are only ever created together with a new database: an existing database whose
    # key file went missing must not silently get a new (wrong) keyring.
    async with open_platform(settings, create_keys=fresh and settings.is_sqlite) as platform:
        if settings.is_sqlite:
            await upgrade(platform.db)  # embedded default: first start and upgrades migrate
            platform.keys.add_missing_named_keys()
            revisions = ", ".join(sorted(await current_revisions(platform.db)))
            logger.info("database schema at %s", revisions, extra={"new_database": fresh})
        await verify_master_keys(platform)
        resolve_policies(settings.retention_days)  # bad retention overrides refuse the start
        with demo_regulator(platform, demo_building) as served:
            async with (
                serve_gateway(served) as gateway,
                serve_background(served),
                demo_locks(served, demo_building),
            ):
                await _serve_http(served, gateway, demo=demo_building > 0)


async def prepare_schema(settings: Settings) -> bool:
    """Check the schema before keys are touched; True when the database is brand new.

    PostgreSQL is never migrated by ``serve``: several processes may start at once and
    migrations are an operator's decision, so a schema behind this build refuses to start.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        current = await current_revisions(db)
    except Exception as exc:
        raise ConfigurationError(
            f"cannot reach the database ({type(exc).__name__}): check ANJU_DATABASE_URL"
        ) from exc
    finally:
        await db.dispose()
    if not settings.is_sqlite:
        heads = migration_heads()
        if current != heads:
            raise ConfigurationError(
                f"数据库结构不是最新版本 / the database schema is at "
                f"{', '.join(sorted(current)) or '(empty)'} but this build needs "
                f"{', '.join(sorted(heads))}: run `anju db upgrade` first"
            )
    return not current


async def verify_master_keys(platform: Platform) -> None:
    """Startup check: refuse a keyring that does not belong to this database (privacy vault)."""
    async with platform.db.transaction() as session:
        await PIVault(platform).verify_master_keys(session)


async def audit_checkpoints(platform: Platform, stop: asyncio.Event) -> None:
    """Every second, sign an audit checkpoint if one is due (count or age threshold)."""
    audit = AuditLog(platform)
    while not stop.is_set():
        try:
            async with platform.db.transaction() as session:
                await audit.checkpoint_if_due(session)
        except Exception:
            logger.exception("audit checkpoint failed; retrying")
        await wait_any(stop, within=CHECKPOINT_INTERVAL_SECONDS)


class _Server(uvicorn.Server):
    """uvicorn's server with anju's own signal handling and a start-up banner."""

    banner: str = ""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises the captured signal after shutdown, which would end the process
        # "killed by SIGTERM"; anju installs its own handlers in _serve_http instead.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.banner:
            typer.echo(self.banner)


def _banner(settings: Settings, demo: bool = False) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"http://{host}:{settings.port}"
    lines = [
        f"anju 正在监听 / listening on {base}",
        f"API 文档 / API docs: {base}/docs  (ReDoc: {base}/redoc)",
        f"数据目录 / data dir: {settings.data_dir.resolve()}",
    ]
    if demo:
        data = settings.data_dir
        lines += [
            f"模拟楼宇 / simulated building: {DEMO_ORGANISATION}, rooms with their locks "
            f"(.venv/bin/anju devices list --data-dir {data}; properties: anju properties …)",
            f"模拟治安平台 / fake regulator receiving the reports: {settings.regulator_url}",
            f"首位管理员 / first administrator: .venv/bin/anju admin create --login admin "
            f'--org "{DEMO_ORGANISATION}" --data-dir {data}',
            "全流程演示 / the whole journey: .venv/bin/anju demo --data-dir /tmp/anju-demo",
        ]
    lines.append("按 Ctrl+C 停止 / press Ctrl+C to stop")
    return "\n".join(lines)


def http_app(platform: Platform, gateway: Gateway | None) -> FastAPI:
    """The HTTP app ``anju serve`` runs; ``/metrics`` includes the in-process gateway's."""
    from anju.app import create_app

    return create_app(platform, collectors=[GatewayCollector(gateway)] if gateway else [])


async def _serve_http(
    platform: Platform, gateway: Gateway | None = None, *, demo: bool = False
) -> None:
    settings = platform.settings
    config = uvicorn.Config(
        http_app(platform, gateway),
        host=settings.host,
        port=settings.port,
        log_config=None,  # our redacting JSON handler is already on the root logger
        access_log=False,  # anju.access logs requests without query strings
        server_header=False,
        lifespan="off",
    )
    server = _Server(config)
    server.banner = await asyncio.to_thread(_banner, settings, demo)
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        logger.info("received %s, shutting down", sig.name)
        if server.should_exit and sig == signal.SIGINT:
            server.force_exit = True  # second Ctrl+C: stop waiting for open connections
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    stop = asyncio.Event()
    checkpoints = asyncio.create_task(audit_checkpoints(platform, stop))
    logger.info("start-up heap exempt from garbage collection: %d objects", freeze_startup_heap())
    try:
        await server.serve()
    finally:
        stop.set()
        await asyncio.gather(checkpoints, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    logger.info("anju stopped")
