"""Regulator report outbox: throughput, and catch-up after a one-hour outage.

The platform queues check-in reports (the heavy kind: two audited decryptions, an SM2 signature
and an SM2-encrypted SM4 envelope each) and its sender delivers them over loopback HTTP to the
fake regulator running as **another process** (``anju reporting fake-regulator``: it decrypts,
verifies and de-duplicates every report, as a real receiver would, without taking this
process's CPU).

- queue: reports/s written to the outbox (1,000 per transaction, with their audit entries).
- throughput: reports/s from a full outbox to all delivered, regulator up.
- catch-up: N reports queued while the regulator is down; a pass finds it down (connection
  refused), the sender then only probes with one report at a time, the clock moves past a
  one-hour outage, the regulator comes back on the same port: wall time until every report is
  delivered. The real wait also includes up to ``PROBE_CAP_SECONDS`` (30 s) until the next
  probe — a fixed bound, not measured here.
- exactly once: the regulator's own count of accepted reports and duplicates.

    .venv/bin/python -m bench.bench_reporting                  # 500 reports, PostgreSQL
    .venv/bin/python -m bench.bench_reporting --reports 100000 # the figure docs ask for
    .venv/bin/python -m bench.bench_reporting --reports 100000 --catch-up-only
    .venv/bin/python -m bench.bench_reporting --db sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.people import people

from anju.people.registration import Registrar
from anju.people.service import Actor
from anju.people.verification.base import StaffCheck
from anju.reporting.rules import PROBE_CAP_SECONDS
from anju.reporting.service import ReportingService
from anju.reporting.tasks import ReportSender
from bench.fleet import SteppingClock, bench_platform, scratch_dir

ORG = "org-bench"
DESK = Actor("account:bench-desk", ORG)
GUESTS = 50
QUEUE_BATCH = 1000
OUTAGE_SECONDS = 3600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_regulator(data_dir: Path, port: int) -> asyncio.subprocess.Process:
    """``anju reporting fake-regulator`` in its own process; returns once it listens."""
    code = "from anju.cli.main import main; main()"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, "reporting", "fake-regulator",
        "--port", str(port), "--data-dir", str(data_dir),
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    if not line.startswith(b"fake regulator at"):
        raise RuntimeError(f"fake regulator did not start: {line!r}")
    await process.stdout.readline()  # the settings hint
    return process


async def stop_regulator(process: asyncio.subprocess.Process) -> str:
    """Stop it (the port closes); its final count line."""
    process.send_signal(signal.SIGTERM)
    assert process.stdout is not None
    out = (await process.stdout.read()).decode().strip()
    await process.wait()
    return out.splitlines()[-1] if out else ""


async def queue(platform: Any, subjects: list[str], count: int, tag: str) -> float:
    """Queue ``count`` check-in reports; reports/s."""
    started = time.perf_counter()
    for start in range(0, count, QUEUE_BATCH):
        async with platform.db.transaction() as session:
            service = ReportingService(platform, session)
            for i in range(start, min(count, start + QUEUE_BATCH)):
                await service.queue_check_in(
                    org_id=ORG, stay_id=f"{tag}-{i}", subject_id=subjects[i % len(subjects)],
                    room_id=f"room-{i % 300}", at=platform.clock.now(),
                )  # fmt: skip
    return count / (time.perf_counter() - started)


async def drain(sender: ReportSender) -> tuple[int, float]:
    """Send until nothing is due; (reports attempted, seconds)."""
    started = time.perf_counter()
    total = 0
    while sent := await sender.send_due():
        total += sent
    return total, time.perf_counter() - started


async def expect(platform: Any, *, delivered: int) -> None:
    """Every report so far delivered, none pending or parked."""
    async with platform.db.transaction() as session:
        counts = await ReportingService(platform, session).repo.counts()
    assert counts == {"delivered": delivered}, counts


async def _run(reports: int, db_kind: str, *, throughput: bool) -> None:
    tmp = scratch_dir("anju-bench-reporting-")
    port = free_port()
    clock = SteppingClock()
    regulator_settings = {
        "regulator_enabled": True,
        "regulator_url": f"http://127.0.0.1:{port}",
        "regulator_public_key": tmp / "data" / "fake-regulator" / "public.pem",
    }
    async with bench_platform(tmp, db_kind, clock=clock, **regulator_settings) as platform:
        subjects = []
        for guest in people(GUESTS):
            async with platform.db.transaction() as session:
                result = await Registrar(platform, session).register(
                    DESK, guest, StaffCheck(original_document_checked=True)
                )
                subjects.append(result.subject_id)
        regulator = await start_regulator(platform.settings.data_dir, port)
        sender = ReportSender(platform)
        try:
            delivered = 0
            if throughput:
                rate = await queue(platform, subjects, reports, "up")
                print(f"queue {reports} check-in reports ({db_kind}): {rate:.0f}/s")
                _, wall = await drain(sender)
                delivered += reports
                await expect(platform, delivered=delivered)
                print(f"throughput, regulator up: {reports / wall:.0f} reports/s ({wall:.1f} s)")

            print(f"regulator before the outage: {await stop_regulator(regulator)}")
            rate = await queue(platform, subjects, reports, "outage")
            print(f"queue {reports} check-in reports ({db_kind}), regulator down: {rate:.0f}/s")
            failed, wall = await drain(sender)  # a pass refused, then probes held off
            probes = 0
            for _ in range(20):  # part of the hour: probes, each alone, 30 s apart at most
                clock.advance(seconds=PROBE_CAP_SECONDS)
                probes += await sender.send_due()
            print(f"outage: {failed} attempts refused in {wall:.1f} s, then {probes} probes")
            clock.advance(seconds=OUTAGE_SECONDS)
            regulator = await start_regulator(platform.settings.data_dir, port)
            _, wall = await drain(sender)
            delivered += reports
            await expect(platform, delivered=delivered)
            print(
                f"catch-up after a one-hour outage: {reports} reports in {wall:.1f} s "
                f"({reports / wall:.0f}/s), + at most {PROBE_CAP_SECONDS} s to the first probe"
            )
        finally:
            await sender.aclose()
            print(f"regulator: {await stop_regulator(regulator)} (expect 0 duplicates)")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench_reporting")
    parser.add_argument("--reports", type=int, default=500, help="reports per phase")
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--quick", action="store_true", help="smoke run (50 reports)")
    parser.add_argument(
        "--catch-up-only", action="store_true", help="skip the regulator-up throughput phase"
    )
    args = parser.parse_args(argv)
    os.environ.pop("ANJU_DATABASE_URL", None)
    reports = 50 if args.quick else args.reports
    asyncio.run(_run(reports, args.db, throughput=not args.catch_up_only))


if __name__ == "__main__":
    main(sys.argv[1:])
