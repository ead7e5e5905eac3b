"""Audit entries appended at commit (one batch per transaction) and the reused tree head."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import AuditLog, NewEntry
from anju.audit import head as audit_head
from anju.audit.models import AuditEntry, AuditQueued
from anju.db import Database
from anju.errors import InvalidInput
from anju.platform import Platform
from tests.support.audit import verified


def entry(n: int, action: str = "devices.command.queued") -> NewEntry:
    return NewEntry(action, "account:a", "org-1", f"device:{n}", details={"n": n})


async def count(platform: Platform) -> int:
    async with platform.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


class Abandoned(Exception):
    """Raised inside a transaction to roll it back."""


async def rolled_back(db: Database, work: Callable[[AsyncSession], Awaitable[object]]) -> None:
    """Run ``work`` in a transaction of ``db`` that then fails (and rolls back)."""
    try:
        async with db.transaction() as session:
            await work(session)
            raise Abandoned
    except Abandoned:
        return


@pytest.mark.req("L17", "R16")
async def test_entries_of_a_transaction_are_appended_together_when_it_commits(
    platform: Platform,
) -> None:
    log = AuditLog(platform)
    async with platform.db.transaction() as session:
        await log.record(session, action="rooms.create", actor="cli")  # index 0, at once
        await log.record_at_commit(session, [entry(1)])
        await log.record_at_commit(session, [entry(2), entry(3)])
        # not in the tables yet: nothing holds the tree lock until the commit
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 1
    async with platform.db.transaction() as session:
        rows = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.leaf_index)))
    assert [(r.leaf_index, r.target) for r in rows] == [
        (0, None),
        (1, "device:1"),
        (2, "device:2"),
        (3, "device:3"),
    ]
    assert len({r.recorded_at for r in rows[1:]}) == 1  # one batch
    await verified(platform)


@pytest.mark.req("L17")
async def test_entries_waiting_for_the_commit_roll_back_with_the_transaction(
    platform: Platform,
) -> None:
    log = AuditLog(platform)
    await rolled_back(platform.db, lambda session: log.record_at_commit(session, [entry(1)]))
    assert await count(platform) == 0
    async with platform.db.transaction() as session:
        await log.record_at_commit(session, [entry(2)])
    assert await count(platform) == 1
    await verified(platform)


@pytest.mark.req("L17")
async def test_bad_entries_are_refused_when_recorded_not_at_commit(platform: Platform) -> None:
    log = AuditLog(platform)
    with pytest.raises(InvalidInput):
        async with platform.db.transaction() as session:
            await log.record_at_commit(session, [NewEntry("Bad Action!", "cli")])
    assert await count(platform) == 0


@pytest.mark.req("L17")
async def test_reading_the_log_in_the_same_transaction_sees_waiting_entries(
    platform: Platform,
) -> None:
    log = AuditLog(platform)
    async with platform.db.transaction() as session:
        await log.record_at_commit(session, [entry(1), entry(2)])
        tail = await log.tail(session, 5)
        assert [r.target for r in tail] == ["device:2", "device:1"]
    assert await count(platform) == 2  # appended once, not again at the commit


@pytest.mark.req("L17")
async def test_a_commit_that_bypasses_the_boundary_with_waiting_entries_is_refused(
    platform: Platform,
) -> None:
    log = AuditLog(platform)
    async with platform.db.sessionmaker() as session:
        await session.begin()
        await log.record_at_commit(session, [entry(1)])
        with pytest.raises(RuntimeError, match="audit entries are waiting"):
            await session.commit()
        await session.rollback()
    assert await count(platform) == 0


@pytest.mark.req("L17")
async def test_inside_a_savepoint_entries_are_queued_at_once(platform: Platform) -> None:
    log = AuditLog(platform)
    async with platform.db.transaction() as session:
        savepoint = await session.begin_nested()
        await log.record_at_commit(session, [entry(1)])
        assert await session.scalar(select(func.count()).select_from(AuditQueued)) == 1
        await savepoint.rollback()  # the savepoint's entry goes with it
        assert await session.scalar(select(func.count()).select_from(AuditQueued)) == 0
        await log.record_at_commit(session, [entry(2)])
    async with platform.db.transaction() as session:
        targets = list(await session.scalars(select(AuditEntry.target)))
    assert targets == ["device:2"]
    await verified(platform)


@pytest.mark.req("L17", "R16")
async def test_the_reused_head_follows_other_writers_and_rollbacks(platform: Platform) -> None:
    """Appends alternate between two engines (two processes), with a rolled-back append in
    between: each engine's remembered head is used only when it is still the stored one."""
    other_db = Database(platform.settings.resolved_database_url)
    other = Platform(
        settings=platform.settings, db=other_db, keys=platform.keys, clock=platform.clock
    )
    mine, theirs = AuditLog(platform), AuditLog(other)
    try:
        for n in range(6):
            log, db = (mine, platform.db) if n % 2 == 0 else (theirs, other_db)
            async with db.transaction() as session:
                await log.record_at_commit(session, [entry(n)])
            await rolled_back(
                db, lambda session, log=log: log.record(session, action="rooms.delete", actor="cli")
            )
        # three more in a row on one engine: the remembered head is reused
        for n in range(6, 9):
            async with platform.db.transaction() as session:
                assert await mine.record(session, action="rooms.create", actor="cli") == n
    finally:
        await other_db.dispose()
    await verified(platform)


@pytest.mark.req("L17")
async def test_a_remembered_head_that_no_longer_matches_is_not_used(platform: Platform) -> None:
    log = AuditLog(platform)
    async with platform.db.transaction() as session:
        await log.record_many(session, [entry(n) for n in range(3)])
    # the tables are emptied behind the log's back (as a test reset would): the stored head
    # (size 0) no longer matches what this process committed, so it starts a fresh tree
    async with platform.db.transaction() as session:
        await session.execute(text("DELETE FROM audit_checkpoints"))
        await session.execute(text("DELETE FROM audit_nodes"))
        await session.execute(text("DELETE FROM audit_entries"))
    async with platform.db.transaction() as session:
        assert await log.record(session, action="rooms.create", actor="cli") == 0
    audit_head.forget()
    async with platform.db.transaction() as session:
        assert await log.record(session, action="rooms.create", actor="cli") == 1
    await verified(platform)
