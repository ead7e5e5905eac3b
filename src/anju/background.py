"""The platform's background jobs besides the gateway: webhook delivery and periodic sweeps.

``anju serve`` runs them with :func:`serve_background` (one place). The retention sweep
(:mod:`anju.retention`, every ``retention_sweep_seconds``) removes what its policies no longer
keep: biometric templates, capture log, consent records, unlock records with their raw device
events and finished webhook deliveries, subject data keys. The access sweep expires grants past
their end (dropping their credentials from the locks) and queues again deliveries whose command
ended without the lock's receipt. The lease sweep
(:mod:`anju.leases.tasks`) ends leases past their period and freezes tenants in arrears every
five minutes.
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
from anju.retention.sweepers import SweeperRegistry, standard_sweepers
from anju.retention.tasks import sweep_periodically
from anju.webhooks.dispatcher import WebhookDispatcher

logger = logging.getLogger("anju.background")
#: Grants end on the hour or minute the operator chose: a minute late at most.
ACCESS_SWEEP_SECONDS = 60.0
#: Arrears are counted in days: five minutes late at most is plenty.
LEASE_SWEEP_SECONDS = 300.0


def platform_sweepers() -> SweeperRegistry:
    """The retention sweepers with the edges' own copies wired in: the gateway keeps each raw
    ``access.unlock`` event, deleted with the unlock record made from it. Every runner of the
    sweep (``anju serve``, ``POST /retention/sweeps``, ``anju retention sweep``) uses this."""
    return standard_sweepers(unlock_copies=(purge_unlock_events,))


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
            sweep_periodically(platform, stop, platform_sweepers()), name="anju-retention"
        ),
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
