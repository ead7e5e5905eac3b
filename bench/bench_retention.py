"""Retention sweep throughput: N due capture-log records deleted and N/100 subjects'
data keys crypto-shredded, each batch audited (issue 6: "retention sweep over 1,000,000 records").

Prints records/s (wall) and CPU per record of this process (the database server's CPU is not
included on PostgreSQL). Smoke run: ``python -m bench.bench_retention --records 2000``.

    .venv/bin/python -m bench.bench_retention [--records N] [--subjects M] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from anju.biometrics.models import FaceCapture
from anju.db import Database
from anju.kit.clock import FixedClock
from anju.kit.crypto import SM4_KEY_BYTES, random_bytes
from anju.kit.keyring import wrapped_version
from anju.migrations import upgrade
from anju.platform import Platform, open_key_provider
from anju.privacy.models import SubjectDataKey
from anju.privacy.vault import data_key_aad
from anju.retention.models import RetentionAnchorEvent
from anju.retention.tasks import run_sweep
from anju.settings import Settings

CHUNK = 10_000


async def seed(platform: Platform, records: int, subjects: int) -> None:
    """``records`` capture rows 200 days old and ``subjects`` checked out 40 days ago."""
    old = platform.clock.now() - timedelta(days=200)
    checked_out = platform.clock.now() - timedelta(days=40)
    for start in range(0, records, CHUNK):
        rows = [
            {
                "id": f"{i:032x}",
                "at": old,
                "operator": "account:bench",
                "device": "kiosk-1",
                "org_id": "org-bench",
                "kind": "document_1to1",
                "outcome": "match",
                "reasons": "",
                "liveness": "passed",
                "subject_id": f"s{i % max(subjects, 1):08d}",
            }
            for i in range(start, min(start + CHUNK, records))
        ]
        async with platform.db.transaction() as session:
            await session.execute(insert(FaceCapture), rows)
    for start in range(0, subjects, CHUNK):
        keys, anchors = [], []
        for i in range(start, min(start + CHUNK, subjects)):
            subject = f"s{i:08d}"
            wrapped = platform.keys.wrap(random_bytes(SM4_KEY_BYTES), data_key_aad(subject, 1))
            keys.append(
                {
                    "subject_id": subject,
                    "generation": 1,
                    "master_version": wrapped_version(wrapped),
                    "wrapped_key": wrapped,
                    "created_at": checked_out,
                    "shredded_at": None,
                }
            )
            anchors.append(
                {
                    "subject_id": subject,
                    "anchor": "check_out",
                    "org_id": "org-bench",
                    "at": checked_out,
                }
            )
        async with platform.db.transaction() as session:
            await session.execute(insert(SubjectDataKey), keys)
            await session.execute(insert(RetentionAnchorEvent), anchors)


@contextlib.asynccontextmanager
async def own_schema(database_url: str | None) -> AsyncIterator[str | None]:
    """On PostgreSQL a schema of the bench's own (dropped afterwards); SQLite: a temp file."""
    if database_url is None or not database_url.startswith("postgresql"):
        yield database_url
        return
    schema = f"anju_bench_{random_bytes(6).hex()}"
    admin = create_async_engine(database_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{database_url}?search_path={schema}"
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def main(records: int, subjects: int, database_url: str | None, batch: int) -> None:
    async with own_schema(database_url) as url:
        await measure(records, subjects, url, batch)


async def measure(records: int, subjects: int, database_url: str | None, batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=database_url)
        keys = open_key_provider(settings, create=True)
        db = Database(settings.resolved_database_url)
        await upgrade(db)
        platform = Platform(settings=settings, db=db, keys=keys, clock=FixedClock())
        try:
            t0 = time.perf_counter()
            await seed(platform, records, subjects)
            print(
                f"seeded {records:,} capture records + {subjects:,} subjects in "
                f"{time.perf_counter() - t0:.1f}s ({settings.resolved_database_url.split(':')[0]})"
            )
            wall0, cpu0 = time.perf_counter(), time.process_time()
            report = await run_sweep(platform, batch_size=batch)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        finally:
            await db.dispose()
    removed = report.removed
    assert report.counts["biometric_capture_log"] == records, report.counts
    assert report.counts["subject_data_key"] == subjects, report.counts
    print(
        f"retention sweep: {removed:,} records in {wall:.1f}s = {removed / wall:,.0f} records/s, "
        f"{cpu / max(removed, 1) * 1e6:.1f} µs CPU/record (this process), batch {batch}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--subjects", type=int, default=None, help="default: records / 100")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    subjects = args.records // 100 if args.subjects is None else args.subjects
    asyncio.run(main(args.records, subjects, args.database_url, args.batch))
