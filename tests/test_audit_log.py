"""Audit log: appends commit with the caller, checkpoints are signed, proofs verify."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from anju.audit import AuditLog, NewEntry
from anju.audit.models import AuditCheckpoint, AuditEntry, AuditNode
from anju.errors import InvalidInput
from anju.kit import merkle
from anju.kit.checkpoint import verify_note
from anju.kit.clock import FixedClock
from anju.platform import Platform


def with_settings(platform: Platform, **changes: object) -> Platform:
    return Platform(
        settings=platform.settings.model_copy(update=changes),
        db=platform.db,
        keys=platform.keys,
        clock=platform.clock,
    )


async def record_n(log: AuditLog, platform: Platform, n: int, start: int = 0) -> list[int]:
    out = []
    async with platform.db.transaction() as session:
        for i in range(start, start + n):
            out.append(
                await log.record(
                    session,
                    action="accounts.login.failed",
                    actor=f"account:{i}",
                    org_id="org-1",
                    target=f"account:{i}",
                    outcome="failure",
                    details={"attempt": i, "ip_hash": "ab12", "locked": False, "note": None},
                )
            )
    return out


@pytest.mark.req("L17", "F1")
async def test_record_returns_contiguous_indices_and_verifies(platform: Platform) -> None:
    log = AuditLog(platform)
    assert await record_n(log, platform, 5) == [0, 1, 2, 3, 4]
    assert await record_n(log, platform, 3, 5) == [5, 6, 7]
    async with platform.db.transaction() as session:
        report = await log.verify(session)
        assert report.ok, report.problems
        assert report.entries == 8
        assert report.uncovered == 8  # nothing signed yet: information, not failure
        assert "not yet covered" in report.summary()
        nodes = await session.scalar(select(func.count()).select_from(AuditNode))
        assert nodes == 8 - 1  # a perfect tree of 8 leaves has 7 interior nodes


@pytest.mark.req("L17", "F1")
async def test_entry_rolls_back_with_the_callers_transaction(platform: Platform) -> None:
    log = AuditLog(platform)
    await record_n(log, platform, 2)

    async def failing_action() -> None:
        async with platform.db.transaction() as session:
            await log.record(session, action="rooms.delete", actor="cli")
            raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError):
        await failing_action()
    async with platform.db.transaction() as session:
        assert await log.record(session, action="rooms.delete", actor="cli") == 2
        assert (await log.verify(session)).ok


@pytest.mark.req("L17")
@pytest.mark.parametrize(
    "bad",
    [
        {"action": "Not A Name", "actor": "cli"},
        {"action": "a.b", "actor": ""},
        {"action": "a.b", "actor": "cli", "outcome": "maybe"},
        {"action": "a.b", "actor": "cli", "details": {"x": 1.5}},
        {"action": "a.b", "actor": "cli", "details": {"x": ["list"]}},
    ],
)
async def test_invalid_entries_are_refused(platform: Platform, bad: dict[str, object]) -> None:
    log = AuditLog(platform)
    async with platform.db.transaction() as session:
        with pytest.raises(InvalidInput):
            await log.record(session, **bad)  # type: ignore[arg-type]
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 0


@pytest.mark.req("L17", "R16")
async def test_checkpoint_signed_after_every_n_entries(platform: Platform) -> None:
    log = AuditLog(with_settings(platform, audit_checkpoint_every=10))
    await record_n(log, platform, 25)
    async with platform.db.transaction() as session:
        sizes = list(await session.scalars(select(AuditCheckpoint.tree_size)))
        assert sorted(sizes) == [10, 20]
        latest = await log.latest_checkpoint(session)
        assert latest is not None
        signed = verify_note(latest.note, platform.settings.audit_origin, log.public_key())
        assert signed.size == 20
        report = await log.verify(session)
        assert report.ok
        assert report.checkpoints == 2
        assert report.uncovered == 5


@pytest.mark.req("L17", "R16")
async def test_checkpoint_if_due_waits_for_the_configured_time(
    platform: Platform, clock: FixedClock
) -> None:
    log = AuditLog(with_settings(platform, audit_checkpoint_seconds=10))
    async with platform.db.transaction() as session:
        assert await log.checkpoint_if_due(session) is None  # empty log: nothing to sign
    await record_n(log, platform, 3)
    async with platform.db.transaction() as session:
        clock.advance(seconds=9)
        assert await log.checkpoint_if_due(session) is None
        clock.advance(seconds=1)
        signed = await log.checkpoint_if_due(session)
        assert signed is not None
        assert signed.size == 3
        assert await log.checkpoint_if_due(session) is None  # nothing new to sign
    await record_n(log, platform, 1, 3)
    async with platform.db.transaction() as session:
        clock.advance(seconds=5)
        assert await log.checkpoint_if_due(session) is None
        clock.advance(seconds=5)
        again = await log.checkpoint_if_due(session)
        assert again is not None
        assert again.size == 4


@pytest.mark.req("L17")
async def test_checkpoint_is_idempotent_until_new_entries(platform: Platform) -> None:
    log = AuditLog(platform)
    await record_n(log, platform, 3)
    async with platform.db.transaction() as session:
        first = await log.checkpoint(session)
        second = await log.checkpoint(session)
        assert first == second
        count = await session.scalar(select(func.count()).select_from(AuditCheckpoint))
        assert count == 1


@pytest.mark.req("L17", "V5")
async def test_inclusion_and_consistency_proofs_verify_with_kit_merkle_alone(
    platform: Platform,
) -> None:
    log = AuditLog(platform)
    await record_n(log, platform, 13)
    async with platform.db.transaction() as session:
        old = await log.checkpoint(session)
    await record_n(log, platform, 24, 13)
    async with platform.db.transaction() as session:
        new = await log.checkpoint(session)
        key = log.public_key()
        origin = platform.settings.audit_origin
        old_signed = verify_note(old.note, origin, key)
        new_signed = verify_note(new.note, origin, key)
        for index in (0, 7, 12, 13, 36):
            proof = await log.inclusion_proof(session, index)
            assert proof.size == 37
            assert proof.checkpoint == new.note
            merkle.verify_inclusion(index, 37, proof.leaf_hash, proof.proof, new_signed.root)
        early = await log.inclusion_proof(session, 5, 13)
        merkle.verify_inclusion(5, 13, early.leaf_hash, early.proof, old_signed.root)
        consistency = await log.consistency_proof(session, 13, 37)
        merkle.verify_consistency(13, 37, old_signed.root, new_signed.root, consistency.proof)
        # a leaf from the wrong position is refused
        other = await log.inclusion_proof(session, 8)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(7, 37, other.leaf_hash, other.proof, new_signed.root)
        with pytest.raises(InvalidInput):
            await log.inclusion_proof(session, 0, 38)


@pytest.mark.req("L17")
async def test_record_many_appends_a_batch_with_one_tree_update(platform: Platform) -> None:
    log = AuditLog(with_settings(platform, audit_checkpoint_every=100))
    await record_n(log, platform, 3)
    batch = [NewEntry(action="privacy.import", actor="cli", details={"row": i}) for i in range(250)]
    async with platform.db.transaction() as session:
        assert await log.record_many(session, batch) == (3, 253)
        assert await log.record_many(session, []) == (253, 253)
    async with platform.db.transaction() as session:
        report = await log.verify(session)
        assert report.ok, report.problems
        assert report.entries == 253
        assert report.checkpoints == 1  # the batch crossed the threshold once: signed at 253
        assert report.uncovered == 0


@pytest.mark.req("L17")
async def test_models_match_the_migration(platform: Platform) -> None:
    """The tables the migration made have exactly the columns the models declare."""
    async with platform.db.engine.connect() as conn:
        for model in (AuditEntry, AuditNode, AuditCheckpoint):
            table = model.__table__
            result = await conn.execute(select(text("*")).select_from(table).where(text("1 = 0")))
            assert set(result.keys()) == {c.name for c in table.columns}, table.name


@pytest.mark.req("L17", "L11", "L2")
async def test_pi_slipped_into_details_is_masked_before_it_becomes_permanent(
    platform: Platform,
) -> None:
    async with platform.db.transaction() as session:
        await AuditLog(platform).record(
            session,
            action="test.careless_caller",
            actor="system",
            details={"note": "guest 11010519491231002X called from 13812345678", "count": 3},
        )
    async with platform.db.transaction() as session:
        (row,) = await AuditLog(platform).tail(session, 1)
    assert "11010519491231002X" not in row.details
    assert "13812345678" not in row.details
    assert "110105********002X" in row.details
    assert '"count":3' in row.details
    async with platform.db.transaction() as session:
        assert (await AuditLog(platform).verify(session)).ok
