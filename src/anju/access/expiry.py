"""The access sweep: grants past their end expire (their credentials are dropped from the
locks), and deliveries whose command ended without a receipt are queued again. Run every minute by
the background jobs of ``anju serve`` (:mod:`anju.background`)."""

from __future__ import annotations

from dataclasses import dataclass

from anju.access.context import SYSTEM
from anju.access.credentials.delivery import Deliveries
from anju.access.grants import GrantService
from anju.access.rules import GrantStatus
from anju.platform import Platform

EXPIRY_BATCH = 100
EXPIRY_ACTOR = f"{SYSTEM}:access-expiry"


@dataclass
class SweepResult:
    expired_grants: int = 0
    ended_credentials: int = 0
    requeued: int = 0


async def expire_due(platform: Platform, *, batch: int = EXPIRY_BATCH) -> SweepResult:
    """Expire every grant whose end has passed (in batches, one transaction each)."""
    result = SweepResult()
    while True:
        async with platform.db.transaction() as session:
            service = GrantService(platform, session)
            due = await service.repo.due_grants(platform.clock.now(), GrantStatus.ACTIVE, batch)
            for grant in due:
                result.ended_credentials += await service.end(
                    grant, EXPIRY_ACTOR, GrantStatus.EXPIRED, "expired"
                )
            result.expired_grants += len(due)
        if len(due) < batch:
            return result


async def sweep(platform: Platform) -> SweepResult:
    """Expiry, then reconciliation of deliveries (what the serve loop runs periodically)."""
    result = await expire_due(platform)
    async with platform.db.transaction() as session:
        result.requeued = await Deliveries(platform, session).reconcile()
    return result
