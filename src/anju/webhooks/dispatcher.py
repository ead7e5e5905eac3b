"""Sending queued webhook deliveries: signed POSTs, timeouts, retries with back-off, dead ends.

One pass (:meth:`WebhookDispatcher.deliver_due`) leases the due deliveries in a transaction,
sends them concurrently *outside* any transaction, then records every attempt in a second one.
A dispatcher that dies mid-pass leaves leased rows that fall due again when the lease ends, so
delivery is at-least-once; receivers de-duplicate by ``Anju-Webhook-Id``.

:meth:`run` wakes right after a commit of this process queued deliveries and otherwise polls
every ``poll_seconds`` (deliveries queued by other processes, retries falling due).
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx

from anju.kit.aio import wait_any
from anju.platform import Platform
from anju.webhooks.models import WebhookEndpoint
from anju.webhooks.service import DELIVERIES_QUEUED, AttemptResult, WebhookService
from anju.webhooks.signing import (
    EVENT_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
)
from anju.webhooks.targets import TargetRefused, parse_target, resolve

logger = logging.getLogger("anju.webhooks")

BATCH = 50
USER_AGENT = "anju-webhooks/1"


class WebhookDispatcher:
    """Delivers webhook events of one platform (see module docstring)."""

    def __init__(
        self, platform: Platform, *, batch: int = BATCH, poll_seconds: float = 1.0
    ) -> None:
        self.platform = platform
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.timeout = platform.settings.webhook_timeout_seconds
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,  # a redirect could point anywhere: the guard saw one URL
            trust_env=False,  # no proxy from the environment
            headers={"User-Agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def deliver_due(self) -> int:
        """Send every due delivery (up to ``batch``) once; how many were attempted."""
        async with self.platform.db.transaction() as session:
            service = WebhookService(self.platform, session)
            claimed = await service.claim_due(self.batch, lease_seconds=self.timeout + 30)
            work = [
                (d.id, d.event_id, d.event_type, d.payload, e, service.secret_of(e))
                for d, e in claimed
            ]
        if not work:
            return 0
        results = await asyncio.gather(*(self._send(*item) for item in work))
        async with self.platform.db.transaction() as session:
            await WebhookService(self.platform, session).record_results(results)
        return len(results)

    async def _send(
        self,
        delivery_id: str,
        event_id: str,
        event_type: str,
        payload: str,
        endpoint: WebhookEndpoint,
        secret: str,
    ) -> AttemptResult:
        body = payload.encode()
        started = time.monotonic()

        def result(status: int | None, error: str | None) -> AttemptResult:
            latency = int((time.monotonic() - started) * 1000)
            return AttemptResult(delivery_id, status, latency, error)

        try:
            target = parse_target(endpoint.url)
            address = await resolve(
                target, allow_private=self.platform.settings.webhook_allow_private
            )
        except TargetRefused as exc:
            return result(None, f"refused: {exc.code}")
        stamp = int(self.platform.clock.now().timestamp())
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json; charset=utf-8",
            ID_HEADER: event_id,
            EVENT_HEADER: event_type,
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: signature(secret, stamp, body),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            response = await self._client.post(
                target.url_for(address), content=body, headers=headers, extensions=extensions
            )
        except httpx.TimeoutException:
            return result(None, "timeout")
        except httpx.HTTPError as exc:
            return result(None, f"{type(exc).__name__}"[:200])
        return result(response.status_code, None if response.is_success else "http_status")

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set (woken by commits of this process, else polling)."""
        woken = DELIVERIES_QUEUED.subscribe()
        try:
            while not stop.is_set():
                woken.clear()
                try:
                    sent = await self.deliver_due()
                except Exception:
                    logger.exception("webhook delivery pass failed; retrying")
                    sent = 0
                if sent < self.batch:
                    await wait_any(stop, woken, within=self.poll_seconds)
        finally:
            DELIVERIES_QUEUED.unsubscribe(woken)
