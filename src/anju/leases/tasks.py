"""The lease sweep as a job (``anju serve`` runs it from :mod:`anju.background`; ``anju leases
sweep`` runs it once): each lease in its own transaction, so one lease that cannot be handled
(logged, counted in ``failed``) never holds back the freezes of the others."""

from __future__ import annotations

import logging

from anju.leases.service import LeaseService, SweepResult
from anju.platform import Platform

logger = logging.getLogger("anju.leases")


async def sweep_leases(platform: Platform) -> SweepResult:
    """End leases past their period, freeze tenants in arrears, unfreeze those cleared."""
    result = SweepResult()
    now = platform.clock.now()
    after = ""
    while True:
        async with platform.db.transaction() as session:
            page = await LeaseService(platform, session).active_page(after)
        if not page:
            return result
        for org_id, lease_id in page:
            try:
                async with platform.db.transaction() as session:
                    outcome = await LeaseService(platform, session).sweep_lease(
                        org_id, lease_id, now
                    )
            except Exception:
                logger.exception("lease sweep failed for lease %s; retried next sweep", lease_id)
                outcome = "failed"
            result.add(lease_id, outcome)
        after = page[-1][1]
