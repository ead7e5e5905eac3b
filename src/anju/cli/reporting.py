"""``anju reporting …``: the regulator report outbox, its delivery log, retrying parked reports,
one send pass, and the fake regulator (docs/reporting.md)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from anju.cli.common import DataDirOption, fail, run, settings_for
from anju.errors import AnjuError
from anju.kit.crypto import SM2PrivateKey
from anju.platform import open_key_provider, open_platform
from anju.reporting.fake_regulator import FakeRegulator
from anju.reporting.rules import ReportStatus
from anju.reporting.service import ReportingService
from anju.reporting.tasks import ReportSender
from anju.reporting.wire import REPORT_SIGNER

app = typer.Typer(
    help="治安报送 / Regulator reporting: outbox, delivery log, fake regulator.",
    no_args_is_help=True,
)
CLI_ACTOR = "cli"
logger = logging.getLogger("anju.reporting")


def _when(value: object) -> str:
    return "-" if value is None else str(value)


@app.command("outbox")
def outbox_command(
    status: Annotated[
        ReportStatus | None, typer.Option("--status", help="pending, delivered or parked.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    data_dir: DataDirOption = None,
) -> None:
    """报送队列 / List regulator reports, newest first (references only, no PI)."""
    settings = settings_for(data_dir)

    async def go() -> list[str]:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            rows = await ReportingService(platform, session).outbox(status, limit=limit)
            return [
                f"{r.id}  {r.kind:<9} {r.status:<9} attempts={r.attempts:<3} "
                f"org={r.org_id} records={r.record_count} created={r.created_at.isoformat()} "
                f"last={r.last_status_code or '-'} {r.last_error or ''}".rstrip()
                for r in rows
            ]

    for line in run(go()):
        typer.echo(line)


@app.command("log")
def log_command(report_id: str, data_dir: DataDirOption = None) -> None:
    """投递记录 / One report's delivery log: every attempt, its status code and outcome."""
    settings = settings_for(data_dir)

    async def go() -> list[str]:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            report, attempts = await ReportingService(platform, session).delivery_log(report_id)
            head = (
                f"{report.id} {report.kind} {report.status} attempts={report.attempts} "
                f"delivered={_when(report.delivered_at)}"
            )
            return [head] + [
                f"  #{a.attempt} {a.at.isoformat()} status={a.status_code or '-'} "
                f"{a.latency_ms} ms {a.outcome} {a.error or ''}".rstrip()
                for a in attempts
            ]

    for line in run(go()):
        typer.echo(line)


@app.command("retry")
def retry_command(report_id: str, data_dir: DataDirOption = None) -> None:
    """重试搁置的报送 / Queue a parked report again once its cause is fixed (audited)."""
    settings = settings_for(data_dir)

    async def go() -> str:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            report = await ReportingService(platform, session).retry_parked(report_id, CLI_ACTOR)
            return f"{report.id} queued again"

    typer.echo(run(go()))


@app.command("send")
def send_command(data_dir: DataDirOption = None) -> None:
    """发送一轮 / One send pass of due reports (``anju serve`` sends continuously)."""
    settings = settings_for(data_dir)
    if not settings.regulator_enabled:
        fail("regulator reporting is disabled (ANJU_REGULATOR_ENABLED)", code=2)

    async def go() -> int:
        async with open_platform(settings) as platform:
            sender = ReportSender(platform)
            try:
                return await sender.send_due()
            finally:
                await sender.aclose()

    typer.echo(f"{run(go())} report(s) attempted")


def _regulator_key(state_dir: Path) -> SM2PrivateKey:
    """The fake regulator's key pair, kept in ``state_dir`` across runs (0600)."""
    path = state_dir / "key.pem"
    if path.exists():
        return SM2PrivateKey.from_pkcs8_pem(path.read_bytes())
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = SM2PrivateKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.to_pkcs8_pem())
    return key


@app.command("fake-regulator")
def fake_regulator_command(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8790,
    fail_with: Annotated[
        int | None, typer.Option("--fail-with", help="Answer this HTTP status to every report.")
    ] = None,
    delay: Annotated[float, typer.Option("--delay", min=0, help="Answer this late (s).")] = 0.0,
    data_dir: DataDirOption = None,
) -> None:
    """假监管端 / Run the fake regulator on loopback, trusting this platform's report key.

    Its key pair lives in <data_dir>/fake-regulator/; its public key is written to
    <data_dir>/fake-regulator/public.pem for ANJU_REGULATOR_PUBLIC_KEY.
    """
    settings = settings_for(data_dir)
    try:
        platform_key = open_key_provider(settings).signer(REPORT_SIGNER).public_key
    except AnjuError as exc:
        fail(f"{exc.message} [{exc.code}]", code=2)
    state_dir = settings.data_dir / "fake-regulator"
    regulator = FakeRegulator(platform_key, _regulator_key(state_dir))
    regulator.fail_with = fail_with
    regulator.delay_seconds = delay
    public = state_dir / "public.pem"
    public.write_text(regulator.public_key.to_pem())
    url = regulator.start(host, port)
    typer.echo(f"fake regulator at {url}")
    typer.echo(f"  ANJU_REGULATOR_URL={url} ANJU_REGULATOR_PUBLIC_KEY={public}")
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(5.0):
            pass
    finally:
        regulator.stop()
        got = regulator.received
        typer.echo(
            f"received {len(got.reports)} report(s), {got.duplicates} duplicate(s), "
            f"{len(got.refused)} refused"
        )
