"""The retention sweep as a job: one transaction per batch, then the run record.

Each batch commits on its own so a sweep over millions of records never holds one long
transaction, and a crash loses at most the batch in flight (sweeping is idempotent: what was
removed is no longer found due). ``sweep_periodically`` is what ``anju serve`` runs.
"""

from __future__ import annotations

import asyncio
import logging

from anju.kit.aio import wait_any
from anju.platform import Platform
from anju.retention.service import RetentionService, SweepReport, new_run
from anju.retention.sweepers import SweeperRegistry, standard_sweepers

logger = logging.getLogger("anju.retention")

SYSTEM_ACTOR = "system:retention"
DEFAULT_BATCH = 500


async def run_sweep(
    platform: Platform,
    *,
    actor: str = SYSTEM_ACTOR,
    registry: SweeperRegistry | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> SweepReport:
    """Sweep every registered kind until nothing is due; record the run."""
    registry = registry or standard_sweepers()
    now = platform.clock.now()
    report = new_run(now)
    async with platform.db.transaction() as session:
        policies = RetentionService(platform, session).policies()
    for kind, sweeper in registry.items():
        policy = policies[kind]
        report.counts[kind] = 0
        more = True
        while more:
            async with platform.db.transaction() as session:
                batch = await RetentionService(platform, session).sweep_batch(
                    sweeper,
                    policy,
                    now=now,
                    actor=actor,
                    run_id=report.run_id,
                    limit=batch_size,
                )
            report.counts[kind] += batch.removed
            more = batch.more
    async with platform.db.transaction() as session:
        await RetentionService(platform, session).finish_run(report, actor, platform.clock.now())
    if report.removed:
        await truncate_sqlite_wal(platform)
    return report


async def truncate_sqlite_wal(platform: Platform) -> None:
    """On SQLite, copy the WAL into the database and truncate it.

    ``secure_delete`` zeroes removed bytes in the new page versions, but the WAL still holds the
    old versions (a shredded wrapped key among them) until a checkpoint; TRUNCATE empties it.
    Busy readers can delay it: the next sweep or SQLite's own checkpoint finishes the job.
    """
    if not platform.db.url.startswith("sqlite"):
        return
    async with platform.db.engine.connect() as conn:
        # Outside any transaction (a checkpoint cannot run inside one): the driver directly.
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        await cursor.close()


async def sweep_periodically(
    platform: Platform, stop: asyncio.Event, registry: SweeperRegistry | None = None
) -> None:
    """Run the sweep every ``retention_sweep_seconds`` until ``stop`` (0 turns it off)."""
    interval = platform.settings.retention_sweep_seconds
    if interval <= 0:
        return
    while not stop.is_set():
        try:
            report = await run_sweep(platform, registry=registry)
            logger.info("retention sweep removed %d items", report.removed)
        except Exception:
            logger.exception("retention sweep failed; retrying at the next interval")
        await wait_any(stop, within=interval)
