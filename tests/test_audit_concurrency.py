"""Concurrent appenders (separate connections, like separate processes) keep one valid tree."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from anju.audit import AuditLog
from anju.audit.models import AuditEntry
from anju.db import Database
from anju.platform import Platform


@pytest.mark.req("L17", "R16")
async def test_concurrent_transactions_get_contiguous_indices_and_a_valid_tree(
    platform: Platform,
) -> None:
    workers, per_worker = 8, 15
    # one engine per worker: each has its own connection pool, as separate processes would
    databases = [Database(platform.settings.resolved_database_url) for _ in range(workers)]

    async def worker(w: int, db: Database) -> list[int]:
        log = AuditLog(
            Platform(settings=platform.settings, db=db, keys=platform.keys, clock=platform.clock)
        )
        got = []
        for batch in range(3):
            async with db.transaction() as session:
                for k in range(per_worker // 3):
                    got.append(
                        await log.record(
                            session,
                            action="locks.unlock",
                            actor=f"worker:{w}",
                            details={"batch": batch, "k": k},
                        )
                    )
                    await asyncio.sleep(0)  # let the others try to interleave
        return got

    try:
        results = await asyncio.gather(*(worker(w, db) for w, db in enumerate(databases)))
    finally:
        for db in databases:
            await db.dispose()
    indices = sorted(i for r in results for i in r)
    assert indices == list(range(workers * per_worker))
    for got in results:
        # a transaction's entries are adjacent: nobody slipped in between them
        for t in range(3):
            chunk = got[t * 5 : (t + 1) * 5]
            assert chunk == list(range(chunk[0], chunk[0] + 5))
    log = AuditLog(platform)
    async with platform.db.transaction() as session:
        await log.checkpoint(session)
        report = await log.verify(session)
        assert report.ok, report.problems
        assert report.entries == workers * per_worker
        stored = list(await session.scalars(select(AuditEntry.leaf_index)))
        assert sorted(stored) == indices
