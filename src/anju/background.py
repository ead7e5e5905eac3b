"""The platform's background jobs besides the gateway: webhook delivery and periodic sweeps.

``anju serve`` runs them with :func:`serve_background` (one place). The retention sweep deletes
unlock records (and their raw ``access.unlock`` device events) older than
``unlock_retention_days`` and finished webhook deliveries older than the same period. The access
sweep expires grants past their end (dropping their credentials from the locks) and queues again
deliveries whose command ended without the lock's receipt. The policy retention sweep
(:mod:`anju.retention`: biometric templates, capture log, consent records, subject data keys)
runs every ``retention_sweep_seconds``. The lease sweep (:mod:`anju.leases.tasks`) ends leases
past their period and freezes tenants in arrears every five minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from anju.access.expiry import sweep as sweep_access
from anju.gateway.records import purge_unlock_events
from anju.kit.aio import wait_any
from anju.leases.tasks import sweep_leases
from anju.platform import Platform
from anju.retention.tasks import sweep_periodically
from anju.unlocks.service import UnlockService
from anju.webhooks.dispatcher import WebhookDispatcher
from anju.webhooks.repository import WebhooksRepository

logger = logging.getLogger("anju.background")
SWEEP_SECONDS = 3600.0
#: Grants end on the hour or minute the operator chose: a minute late at most.
ACCESS_SWEEP_SECONDS = 60.0
#: Arrears are counted in days: five minutes late at most is plenty.
LEASE_SWEEP_SECONDS = 300.0


async def sweep_retention(platform: Platform) -> int:
    """Delete what the retention policy no longer keeps; the number of unlock records."""
    async with platform.db.transaction() as session:
        service = UnlockService(platform, session)
        cutoff = service.retention_cutoff()
        raw = await purge_unlock_events(session, cutoff)
        deleted = await service.purge_expired(cutoff, raw_events=raw)
        await WebhooksRepository(session).purge_finished(cutoff)
    return deleted


async def _every(
    seconds: float, job: Callable[[], Awaitable[object]], name: str, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            await job()
        except Exception:
            logger.exception("%s failed; retrying later", name)
        await wait_any(stop, within=seconds)


@contextlib.asynccontextmanager
async def serve_background(platform: Platform) -> AsyncIterator[None]:
    """Run the webhook dispatcher and the sweeps while the context is open."""
    stop = asyncio.Event()
    dispatcher = WebhookDispatcher(platform)
    tasks = [
        asyncio.create_task(dispatcher.run(stop), name="anju-webhooks"),
        asyncio.create_task(
            _every(SWEEP_SECONDS, lambda: sweep_retention(platform), "retention sweep", stop),
            name="anju-retention",
        ),
        asyncio.create_task(sweep_periodically(platform, stop), name="anju-retention-policies"),
        asyncio.create_task(
            _every(ACCESS_SWEEP_SECONDS, lambda: sweep_access(platform), "access sweep", stop),
            name="anju-access-sweep",
        ),
        asyncio.create_task(
            _every(LEASE_SWEEP_SECONDS, lambda: sweep_leases(platform), "lease sweep", stop),
            name="anju-lease-sweep",
        ),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await dispatcher.aclose()
