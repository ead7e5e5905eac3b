"""Audit-log helpers shared by tests."""

from __future__ import annotations

from anju.audit import AuditLog
from anju.platform import Platform


async def verified(platform: Platform) -> None:
    """Sign a checkpoint of the whole log, then verify the log against it."""
    log = AuditLog(platform)
    async with platform.db.transaction() as session:
        await log.checkpoint(session)
        report = await log.verify(session)
    assert report.ok, report.problems
