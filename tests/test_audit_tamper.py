"""Tampering with the audit tables directly in SQL is detected and the first bad entry named."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select, text

from anju.audit import AuditLog
from anju.audit.encoding import entry_leaf_hash
from anju.audit.models import AuditEntry
from anju.audit.verify import VerifyReport
from anju.kit import merkle
from anju.platform import Platform

pytestmark = pytest.mark.req("L17", "F1", "V5")

ENTRIES = AuditEntry.__table__


@pytest.fixture
async def log(platform: Platform) -> AuditLog:
    """40 entries: checkpoints at 16 and 32, the last 8 not yet signed."""
    audit = AuditLog(platform)
    for start, n, sign in ((0, 16, True), (16, 16, True), (32, 8, False)):
        async with platform.db.transaction() as session:
            for i in range(start, start + n):
                await audit.record(
                    session,
                    action="locks.unlock",
                    actor=f"account:{i % 3}",
                    org_id="org-1",
                    target=f"lock:{i}",
                    details={"n": i},
                )
            if sign:
                await audit.checkpoint(session)
    return audit


async def sql(platform: Platform, *statements: str, **params: object) -> None:
    async with platform.db.transaction() as session:
        for statement in statements:
            await session.execute(text(statement), params)


async def verify(platform: Platform, log: AuditLog) -> VerifyReport:
    async with platform.db.transaction() as session:
        return await log.verify(session)


def first(report: VerifyReport) -> tuple[str, int | None]:
    problem = report.first_problem
    assert problem is not None, "tampering was not detected"
    return problem.kind, problem.index


async def test_intact_log_verifies(platform: Platform, log: AuditLog) -> None:
    report = await verify(platform, log)
    assert report.ok, report.problems
    assert (report.entries, report.checkpoints, report.uncovered) == (40, 2, 8)


async def test_updated_details_are_reported_as_altered(platform: Platform, log: AuditLog) -> None:
    await sql(platform, "UPDATE audit_entries SET details = :d WHERE leaf_index = 20", d='{"n":9}')
    report = await verify(platform, log)
    assert first(report) == ("altered", 20)
    assert "entry 20 was altered" in report.summary()
    # the signed checkpoint at 32 no longer matches either, narrowed to that one entry
    root_problem = next(p for p in report.problems if p.kind == "checkpoint_root")
    assert root_problem.entries == (20, 21)
    assert "checkpoint at size 32" in root_problem.message


async def test_altered_unsigned_entry_is_still_caught_by_its_leaf_hash(
    platform: Platform, log: AuditLog
) -> None:
    await sql(platform, "UPDATE audit_entries SET outcome = 'denied' WHERE leaf_index = 35")
    assert first(await verify(platform, log)) == ("altered", 35)


async def test_deleted_row_is_reported_missing(platform: Platform, log: AuditLog) -> None:
    await sql(platform, "DELETE FROM audit_entries WHERE leaf_index = 20")
    report = await verify(platform, log)
    assert first(report) == ("missing", 20)
    assert "entry 20 is missing" in report.summary()


async def test_deleted_row_with_renumbering_is_reported_missing(
    platform: Platform, log: AuditLog
) -> None:
    await sql(
        platform,
        "DELETE FROM audit_entries WHERE leaf_index = 20",
        "UPDATE audit_entries SET leaf_index = -leaf_index WHERE leaf_index > 20",
        "UPDATE audit_entries SET leaf_index = -leaf_index - 1 WHERE leaf_index < 0",
    )
    report = await verify(platform, log)
    assert first(report) == ("missing", 20)


async def test_deleted_newest_signed_entries_are_reported_missing(
    platform: Platform, log: AuditLog
) -> None:
    await sql(platform, "DELETE FROM audit_entries WHERE leaf_index >= 30")
    report = await verify(platform, log)
    assert first(report) == ("missing", 30)
    assert "[30, 32)" in report.summary()


async def test_swapped_contents_are_reported_reordered(platform: Platform, log: AuditLog) -> None:
    async with platform.db.transaction() as session:
        rows = {
            i: (await session.execute(select(ENTRIES).where(ENTRIES.c.leaf_index == i))).one()
            for i in (10, 25)
        }
        for here, there in ((10, 25), (25, 10)):
            r = rows[there]
            await session.execute(
                text(
                    "UPDATE audit_entries SET actor = :actor, target = :target, "
                    "details = :details WHERE leaf_index = :i"
                ),
                {"actor": r.actor, "target": r.target, "details": r.details, "i": here},
            )
    report = await verify(platform, log)
    assert first(report) == ("reordered", 10)
    assert "content recorded as entry 25" in report.summary()


async def test_swapped_whole_rows_are_reported_reordered(platform: Platform, log: AuditLog) -> None:
    await sql(
        platform,
        "UPDATE audit_entries SET leaf_index = -1 WHERE leaf_index = 3",
        "UPDATE audit_entries SET leaf_index = 3 WHERE leaf_index = 7",
        "UPDATE audit_entries SET leaf_index = 7 WHERE leaf_index = -1",
    )
    assert first(await verify(platform, log)) == ("reordered", 3)


@pytest.mark.parametrize("forge_leaf_hash", [True, False])
async def test_row_inserted_in_the_middle_is_reported_inserted(
    platform: Platform, log: AuditLog, forge_leaf_hash: bool
) -> None:
    async with platform.db.transaction() as session:
        await session.execute(
            text("UPDATE audit_entries SET leaf_index = -leaf_index - 100 WHERE leaf_index >= 12")
        )
        await session.execute(
            text("UPDATE audit_entries SET leaf_index = -leaf_index - 99 WHERE leaf_index < 0")
        )
        template = (await session.execute(select(ENTRIES).where(ENTRIES.c.leaf_index == 11))).one()
        forged = {
            "recorded_at": template.recorded_at,
            "org_id": "org-1",
            "actor": "account:0",
            "action": "locks.unlock",
            "target": "lock:back-door",
            "outcome": "success",
            "details": '{"n":11}',
        }
        leaf = (
            entry_leaf_hash(index=12, **forged)  # a careful attacker recomputes the leaf hash
            if forge_leaf_hash
            else b"\x00" * 32
        )
        await session.execute(
            text(
                "INSERT INTO audit_entries (leaf_index, recorded_at, org_id, actor, action, "
                "target, outcome, details, leaf_hash) VALUES (12, :recorded_at, :org_id, "
                ":actor, :action, :target, :outcome, :details, :leaf)"
            ),
            {**forged, "leaf": leaf},
        )
    report = await verify(platform, log)
    assert first(report) == ("inserted", 12)
    assert "entry 12 was inserted" in report.summary()


async def rewrite_consistently(platform: Platform, index: int, *, nodes: bool) -> None:
    """Change an entry, recompute its leaf hash and (optionally) every stored node."""
    async with platform.db.transaction() as session:
        await session.execute(
            text("UPDATE audit_entries SET actor = 'account:mallory' WHERE leaf_index = :i"),
            {"i": index},
        )
        rows = (await session.execute(select(ENTRIES).order_by(ENTRIES.c.leaf_index))).all()
        frontier = merkle.Frontier()
        for row in rows:
            leaf = entry_leaf_hash(
                index=row.leaf_index,
                recorded_at=row.recorded_at,
                org_id=row.org_id,
                actor=row.actor,
                action=row.action,
                target=row.target,
                outcome=row.outcome,
                details=row.details,
            )
            await session.execute(
                text("UPDATE audit_entries SET leaf_hash = :h WHERE leaf_index = :i"),
                {"h": leaf, "i": row.leaf_index},
            )
            for node in frontier.append(leaf):
                if nodes:
                    await session.execute(
                        text(
                            "UPDATE audit_nodes SET hash = :h "
                            "WHERE level = :level AND node_index = :ix"
                        ),
                        {"h": node.hash, "level": node.level, "ix": node.index},
                    )


async def test_consistent_rewrite_of_leaf_and_nodes_breaks_the_signed_root(
    platform: Platform, log: AuditLog
) -> None:
    await rewrite_consistently(platform, 20, nodes=True)
    report = await verify(platform, log)
    problem = report.first_problem
    assert problem is not None
    assert (problem.kind, problem.index, problem.entries) == ("checkpoint_root", 16, (16, 32))
    assert "checkpoint at size 32" in problem.message
    assert "after the last matching checkpoint (size 16)" in problem.message
    assert [p.kind for p in report.problems] == ["checkpoint_root"]


async def test_rewrite_of_leaf_without_nodes_is_narrowed_to_two_entries(
    platform: Platform, log: AuditLog
) -> None:
    await rewrite_consistently(platform, 5, nodes=False)
    report = await verify(platform, log)
    root_problem = next(p for p in report.problems if p.kind == "checkpoint_root")
    # the stored nodes still authenticate against the signed root down to the pair [4, 6)
    assert root_problem.entries == (4, 6)
    assert "checkpoint at size 16" in root_problem.message
    assert first(report) == ("checkpoint_root", 4)
    assert any(p.kind == "node" and p.entries == (4, 6) for p in report.problems)


async def test_rewrite_after_the_last_checkpoint_is_a_known_limit(
    platform: Platform, log: AuditLog
) -> None:
    """Unsigned entries rewritten consistently pass: only a later checkpoint binds them."""
    await rewrite_consistently(platform, 36, nodes=True)
    report = await verify(platform, log)
    assert report.ok
    assert report.uncovered == 8


async def test_corrupted_node_is_reported(platform: Platform, log: AuditLog) -> None:
    await sql(
        platform,
        "UPDATE audit_nodes SET hash = :h WHERE level = 2 AND node_index = 5",
        h=b"\x01" * 32,
    )
    report = await verify(platform, log)
    assert report.problems[0].kind == "node"
    assert first(report) == ("node", 20)
    assert "level 2, index 5" in report.summary()


async def test_corrupted_checkpoint_signature_is_reported(
    platform: Platform, log: AuditLog
) -> None:
    async with platform.db.transaction() as session:
        note = (
            await session.execute(text("SELECT note FROM audit_checkpoints WHERE tree_size = 16"))
        ).scalar_one()
        body, sig_line = note.split("\n\n")
        name, blob = sig_line.rstrip("\n").rsplit(" ", 1)
        raw = bytearray(base64.b64decode(blob))
        raw[-1] ^= 0x01
        bad = f"{body}\n\n{name} {base64.b64encode(bytes(raw)).decode()}\n"
        await session.execute(
            text("UPDATE audit_checkpoints SET note = :n WHERE tree_size = 16"), {"n": bad}
        )
    report = await verify(platform, log)
    assert [p.kind for p in report.problems] == ["checkpoint_signature"]
    assert "checkpoint at size 16: bad signature" in report.summary()


async def test_replaced_checkpoint_root_is_reported(platform: Platform, log: AuditLog) -> None:
    fake = base64.b64encode(b"\x07" * 32).decode()
    async with platform.db.transaction() as session:
        note = (
            await session.execute(text("SELECT note FROM audit_checkpoints WHERE tree_size = 32"))
        ).scalar_one()
        lines = note.split("\n")
        lines[2] = fake
        await session.execute(
            text("UPDATE audit_checkpoints SET note = :n, root = :r WHERE tree_size = 32"),
            {"n": "\n".join(lines), "r": b"\x07" * 32},
        )
    report = await verify(platform, log)
    assert [p.kind for p in report.problems] == ["checkpoint_signature"]


async def test_replaced_checkpoint_root_column_is_reported(
    platform: Platform, log: AuditLog
) -> None:
    await sql(
        platform, "UPDATE audit_checkpoints SET root = :r WHERE tree_size = 32", r=b"\x07" * 32
    )
    report = await verify(platform, log)
    assert [p.kind for p in report.problems] == ["checkpoint_mismatch"]
