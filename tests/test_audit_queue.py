"""Entries recorded at commit never wait in line for the tree lock: when it is busy they are
queued, committed with their change, and appended by one shared round (the sequencer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from anju.audit import AuditLog, NewEntry
from anju.audit import repository as audit_repository
from anju.audit.models import AuditEntry
from anju.audit.sequencer import Sequencer, sequencer_for
from anju.db import Database, after_commit
from anju.platform import Platform
from tests.support.audit import verified


def entry(n: int) -> NewEntry:
    return NewEntry("devices.command.queued", "account:a", "org-1", f"device:{n}")


async def targets(platform: Platform) -> list[str | None]:
    async with platform.db.transaction() as session:
        rows = await session.scalars(select(AuditEntry.target).order_by(AuditEntry.leaf_index))
        return list(rows)


async def queued(platform: Platform) -> int:
    async with platform.db.transaction() as session:
        return await audit_repository.queued_count(session)


def audited_change(platform: Platform, *numbers: int) -> asyncio.Task[None]:
    """A transaction recording ``entry(n)`` for each number at commit, running as a task."""

    async def change() -> None:
        async with platform.db.transaction() as session:
            await AuditLog(platform).record_at_commit(session, [entry(n) for n in numbers])

    return asyncio.create_task(change())


async def until_queued(platform: Platform, count: int) -> None:
    """Wait (up to 5 s) until ``count`` entries are committed in the queue."""
    for _ in range(500):
        if await queued(platform) == count:
            return
        await asyncio.sleep(0.01)
    assert await queued(platform) == count


@pytest.fixture
async def holder(platform: Platform) -> AsyncIterator[asyncio.Event]:
    """Another engine (another process) holds the tree lock in an open transaction, having
    appended ``device:holder``, until the event is set."""
    other = Database(platform.settings.resolved_database_url)
    release, holding = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        log = AuditLog(Platform(settings=platform.settings, db=other, keys=platform.keys))
        async with other.transaction() as session:
            await log.record(session, action="rooms.create", actor="cli", target="device:holder")
            holding.set()
            await release.wait()

    task = asyncio.create_task(hold())
    await holding.wait()
    try:
        yield release
    finally:
        release.set()
        await task
        await other.dispose()


@pytest.mark.req("L17", "R16")
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_busy_tree_lock_queues_the_entries_and_the_commit_does_not_wait_for_it(
    platform: Platform, holder: asyncio.Event
) -> None:
    change = audited_change(platform, 1, 2)
    # The change commits with its entries queued while the other transaction holds the lock …
    await until_queued(platform, 2)
    # … and its transaction block returns only once they are in the tree.
    await asyncio.sleep(0.05)
    assert not change.done()
    holder.set()
    await asyncio.wait_for(change, 10)
    assert await targets(platform) == ["device:holder", "device:1", "device:2"]
    assert await queued(platform) == 0
    await verified(platform)


@pytest.mark.req("L17", "R16")
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_transactions_queued_behind_the_lock_are_appended_by_one_shared_round(
    platform: Platform, holder: asyncio.Event
) -> None:
    rounds = sequencer_for(platform.db).rounds
    changes = [audited_change(platform, n) for n in range(20)]
    await until_queued(platform, 20)
    holder.set()
    await asyncio.wait_for(asyncio.gather(*changes), 10)
    # 20 transactions, not 20 lock hand-overs: the round under way waited for the lock and
    # took everything queued by then; at most one more round follows for late waiters.
    assert sequencer_for(platform.db).rounds - rounds <= 2
    stored = await targets(platform)
    assert stored[0] == "device:holder"
    assert sorted(stored[1:]) == sorted(f"device:{n}" for n in range(20))
    await verified(platform)


@pytest.mark.req("L17", "R16")
async def test_entries_queued_by_a_process_that_stopped_are_appended_by_the_checkpoint_job(
    platform: Platform,
) -> None:
    """A process that died between its commit and its round leaves queued entries; the
    periodic checkpoint job of any process appends them."""
    async with platform.db.transaction() as session:
        await audit_repository.queue(
            session,
            [
                {
                    "org_id": "org-1",
                    "actor": "account:a",
                    "action": "devices.command.queued",
                    "target": "device:orphan",
                    "outcome": "success",
                    "details": "{}",
                }
            ],
        )
    assert await queued(platform) == 1
    async with platform.db.transaction() as session:
        await AuditLog(platform).checkpoint_if_due(session)
    assert await targets(platform) == ["device:orphan"]
    assert await queued(platform) == 0
    await verified(platform)


@pytest.mark.req("L17")
async def test_a_rolled_back_transaction_queues_nothing_and_waits_for_no_round(
    platform: Platform,
) -> None:
    log = AuditLog(platform)
    rounds = sequencer_for(platform.db).rounds

    async def failing_change() -> None:
        async with platform.db.transaction() as session:
            savepoint = await session.begin_nested()
            await log.record_at_commit(session, [entry(1)])  # queued at once in a savepoint
            await savepoint.commit()
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError, match="the change fails"):
        await failing_change()
    assert await queued(platform) == 0
    assert await targets(platform) == []
    assert sequencer_for(platform.db).rounds == rounds


@pytest.mark.req("L17")
async def test_work_registered_after_commit_runs_only_once_the_commit_succeeded(
    platform: Platform,
) -> None:
    ran: list[str] = []

    async def note(what: str) -> None:
        ran.append(what)

    async with platform.db.transaction() as session:
        after_commit(session, "note", lambda: note("first"))
        after_commit(session, "note", lambda: note("again"))  # same name: once

    async def failing_change() -> None:
        async with platform.db.transaction() as session:
            after_commit(session, "other", lambda: note("rolled back"))
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError, match="rollback"):
        await failing_change()
    assert ran == ["first"]


@pytest.mark.req("L17")
async def test_the_sequencer_serves_waiters_of_a_round_under_way_in_the_next_one() -> None:
    sequencer = Sequencer()
    started, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def round_() -> None:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()

    first = asyncio.create_task(sequencer.drain(round_))
    await started.wait()
    # arriving during round 1: its entries may have committed after round 1 read the queue
    late = [asyncio.create_task(sequencer.drain(round_)) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert calls == 1
    assert not any(t.done() for t in late)
    release.set()
    await asyncio.gather(first, *late)
    assert calls == 2  # one more round for all five
    assert sequencer.rounds == 2


@pytest.mark.req("L17")
async def test_a_failed_round_is_logged_and_leaves_the_waiters_free(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sequencer = Sequencer()

    async def broken() -> None:
        raise ConnectionError("database gone")

    await asyncio.wait_for(sequencer.drain(broken), 5)  # returns: the change is committed
    assert sequencer.rounds == 0
    assert "they stay queued" in caplog.text
