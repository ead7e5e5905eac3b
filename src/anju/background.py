"""The platform's background jobs besides the gateway: webhook delivery, regulator report
delivery (:mod:`anju.reporting.tasks`, when ``regulator_enabled``) and periodic sweeps.

``anju serve`` runs them with :func:`serve_background` (one place). The retention sweep
(:mod:`anju.retention`, every ``retention_sweep_seconds``) removes what its policies no longer
keep: biometric templates, capture log, consent records, unlock records with their raw device
events, finished webhook deliveries and delivered regulator reports, subject data keys. The
access sweep expires grants past their end (dropping their credentials from the locks) and
queues again deliveries whose command ended without the lock's receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from anju.access.expiry import sweep as sweep_access
from anju.gateway.records import purge_unlock_events
from anju.kit.aio import wait_any
from anju.platform import Platform
from anju.reporting.repository import purge_delivered_reports
from anju.reporting.tasks import ReportSender
from anju.retention.sweepers import SweeperRegistry, standard_sweepers
from anju.retention.tasks import sweep_periodically
from anju.webhooks.dispatcher import WebhookDispatcher

logger = logging.getLogger("anju.background")
#: Grants end on the hour or minute the operator chose: a minute late at most.
ACCESS_SWEEP_SECONDS = 60.0


def platform_sweepers() -> SweeperRegistry:
    """The retention sweepers with the edges' own copies wired in: the gateway keeps each raw
    ``access.unlock`` event, deleted with the unlock record made from it; delivered regulator
    reports (which list unlock record ids) go with the records too. Every runner of the sweep
    (``anju serve``, ``POST /retention/sweeps``, ``anju retention sweep``) uses this."""
    return standard_sweepers(unlock_copies=(purge_unlock_events, purge_delivered_reports))


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
    """Run the webhook dispatcher, the report sender and the sweeps while the context is open."""
    stop = asyncio.Event()
    dispatcher = WebhookDispatcher(platform)
    sender = ReportSender(platform)
    tasks = [
        asyncio.create_task(dispatcher.run(stop), name="anju-webhooks"),
        asyncio.create_task(sender.run(stop), name="anju-regulator-reports"),
        asyncio.create_task(
            sweep_periodically(platform, stop, platform_sweepers()), name="anju-retention"
        ),
        asyncio.create_task(
            _every(ACCESS_SWEEP_SECONDS, lambda: sweep_access(platform), "access sweep", stop),
            name="anju-access-sweep",
        ),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await dispatcher.aclose()
        await sender.aclose()
