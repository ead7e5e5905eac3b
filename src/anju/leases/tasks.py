"""The lease sweep as a job: one transaction, committed at the end (``anju serve`` runs it from
:mod:`anju.background`; ``anju leases sweep`` runs it once)."""

from __future__ import annotations

from anju.leases.service import LeaseService, SweepResult
from anju.platform import Platform


async def sweep_leases(platform: Platform) -> SweepResult:
    """End leases past their period, freeze tenants in arrears, unfreeze those cleared."""
    async with platform.db.transaction() as session:
        return await LeaseService(platform, session).sweep(platform.clock.now())
