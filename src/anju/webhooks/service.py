"""Webhook endpoints, the event outbox and delivery bookkeeping (docs/webhooks.md).

:meth:`WebhookService.emit` writes one outbox row per subscribed endpoint in the caller's
transaction, so an event is delivered if and only if the change that caused it commits; the
dispatcher (:mod:`anju.webhooks.dispatcher`) is woken right after that commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.audit import AuditLog
from anju.db import new_id
from anju.errors import Conflict, Forbidden, NotFound
from anju.kit.wakeup import Wakeup
from anju.platform import Platform
from anju.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from anju.webhooks.repository import WebhooksRepository
from anju.webhooks.rules import (
    MAX_ENDPOINTS_PER_ORG,
    DeliveryStatus,
    check_event_types,
    new_secret,
    retry_delay_seconds,
)
from anju.webhooks.targets import check_literal, parse_target

#: Wakes the dispatcher of this process after a commit that queued deliveries.
DELIVERIES_QUEUED = Wakeup("webhooks")
SECRET_AAD = b"anju/webhooks/secret/v1|"


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP attempt of a delivery gave."""

    delivery_id: str
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def not_found() -> NotFound:
    return NotFound("回调端点不存在 / no such webhook endpoint")


def event_body(event_id: str, event_type: str, org_id: str, at: datetime, data: Any) -> str:
    """The JSON body of an event (UTF-8, keys sorted, compact)."""
    payload = {
        "id": event_id,
        "type": event_type,
        "org_id": org_id,
        "created_at": at.isoformat(),
        "data": data,
    }
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class WebhookService:
    """Webhooks of one transaction (the caller commits)."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self.platform = platform
        self.session = session
        self.clock = platform.clock
        self.repo = WebhooksRepository(session)
        self.audit = AuditLog(platform)

    # --- permissions -----------------------------------------------------------------------
    @staticmethod
    def _require(principal: Principal) -> str:
        AccountService.require(principal, Cap.WEBHOOKS_MANAGE)
        if principal.org_id is None:
            raise Forbidden("回调属于机构 / webhooks belong to an organisation")
        return principal.org_id

    def _require_second_factor(self, principal: Principal) -> None:
        AccountService(self.platform, self.session).require_second_factor(principal)

    async def _owned(self, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
        org_id = self._require(principal)
        endpoint = await self.repo.endpoint(endpoint_id)
        if endpoint is None or endpoint.org_id != org_id:
            raise not_found()
        return endpoint

    # --- endpoints -------------------------------------------------------------------------
    async def create_endpoint(
        self, principal: Principal, url: str, event_types: list[str], description: str = ""
    ) -> CreatedEndpoint:
        """Register a receiver; its signing secret is returned once (second factor needed)."""
        org_id = self._require(principal)
        self._require_second_factor(principal)
        target = parse_target(url)
        check_literal(target, allow_private=self.platform.settings.webhook_allow_private)
        types = check_event_types(event_types)
        if len(await self.repo.active_endpoints(org_id)) >= MAX_ENDPOINTS_PER_ORG:
            raise Conflict(f"每个机构至多 {MAX_ENDPOINTS_PER_ORG} 个回调 / too many endpoints")
        endpoint_id = new_id()
        secret = new_secret()
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            org_id=org_id,
            url=target.url,
            event_types=json.dumps(types),
            description=description[:200],
            secret_wrapped=self.platform.keys.wrap(secret.encode(), self._aad(endpoint_id)),
            active=True,
            created_by=principal.actor,
            created_at=self.clock.now(),
        )
        self.session.add(endpoint)
        await self.session.flush()
        await self._audit(principal, "webhooks.endpoint.created", endpoint, types=",".join(types))
        return CreatedEndpoint(endpoint, secret)

    async def endpoints(self, principal: Principal) -> Sequence[WebhookEndpoint]:
        return await self.repo.endpoints(self._require(principal))

    async def endpoint(self, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
        return await self._owned(principal, endpoint_id)

    async def disable_endpoint(self, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
        """Stop sending to an endpoint (pending deliveries become dead at their next turn)."""
        endpoint = await self._owned(principal, endpoint_id)
        self._require_second_factor(principal)
        endpoint.active = False
        await self.session.flush()
        await self._audit(principal, "webhooks.endpoint.disabled", endpoint)
        return endpoint

    async def deliveries(
        self,
        principal: Principal,
        endpoint_id: str,
        status: DeliveryStatus | None,
        *,
        limit: int,
        offset: int,
    ) -> Sequence[WebhookDelivery]:
        """The delivery log of an endpoint, newest first."""
        await self._owned(principal, endpoint_id)
        return await self.repo.deliveries(endpoint_id, status, limit=limit, offset=offset)

    async def attempts(
        self, principal: Principal, delivery_id: str
    ) -> tuple[WebhookDelivery, Sequence[WebhookAttempt]]:
        """A delivery and each of its attempts."""
        org_id = self._require(principal)
        delivery = await self.repo.delivery(delivery_id)
        if delivery is None or delivery.org_id != org_id:
            raise NotFound("投递不存在 / no such delivery")
        return delivery, await self.repo.attempts(delivery_id)

    def secret_of(self, endpoint: WebhookEndpoint) -> str:
        """The endpoint's signing secret (for the dispatcher only)."""
        return self.platform.keys.unwrap(endpoint.secret_wrapped, self._aad(endpoint.id)).decode()

    @staticmethod
    def _aad(endpoint_id: str) -> bytes:
        return SECRET_AAD + endpoint_id.encode()

    async def _audit(
        self, principal: Principal, action: str, endpoint: WebhookEndpoint, **extra: str
    ) -> None:
        await self.audit.record(
            self.session,
            action=action,
            actor=principal.actor,
            org_id=endpoint.org_id,
            target=f"webhook:{endpoint.id}",
            details=dict(extra),
        )

    # --- the outbox ------------------------------------------------------------------------
    async def emit(self, org_id: str | None, event_type: str, data: Mapping[str, Any]) -> int:
        """Queue ``event_type`` for every active endpoint of ``org_id`` subscribed to it, in
        the caller's transaction; the number of deliveries queued. ``data`` must hold no PI."""
        if org_id is None:
            return 0
        endpoints = [
            e
            for e in await self.repo.active_endpoints(org_id)
            if event_type in json.loads(e.event_types)
        ]
        if not endpoints:
            return 0
        now = self.clock.now()
        event_id = new_id()
        body = event_body(event_id, event_type, org_id, now, dict(data))
        for endpoint in endpoints:
            self.session.add(
                WebhookDelivery(
                    id=new_id(),
                    endpoint_id=endpoint.id,
                    org_id=org_id,
                    event_id=event_id,
                    event_type=event_type,
                    payload=body,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        await self.session.flush()
        DELIVERIES_QUEUED.after_commit(self.session)
        return len(endpoints)

    # --- delivery (the dispatcher) ---------------------------------------------------------
    async def claim_due(
        self, limit: int, lease_seconds: float
    ) -> list[tuple[WebhookDelivery, WebhookEndpoint]]:
        """Due deliveries with their endpoints, leased for ``lease_seconds`` (so no other
        dispatcher sends them meanwhile); those of disabled endpoints are marked dead."""
        now = self.clock.now()
        claimed = []
        for delivery in await self.repo.due(now, limit):
            endpoint = await self.repo.endpoint(delivery.endpoint_id)
            if endpoint is None or not endpoint.active:
                delivery.status = DeliveryStatus.DEAD
                delivery.last_error = "endpoint_disabled"
                continue
            delivery.next_attempt_at = now + timedelta(seconds=lease_seconds)
            claimed.append((delivery, endpoint))
        await self.session.flush()
        return claimed

    async def record_results(self, results: Sequence[AttemptResult]) -> None:
        """Log each attempt; delivered, retried later with back-off, or dead at the limit."""
        now = self.clock.now()
        limit = self.platform.settings.webhook_max_attempts
        for result in results:
            delivery = await self.repo.delivery(result.delivery_id)
            if delivery is None or delivery.status != DeliveryStatus.PENDING:
                continue
            delivery.attempts += 1
            delivery.last_status_code = result.status_code
            delivery.last_error = result.error
            if result.ok:
                delivery.status = DeliveryStatus.DELIVERED
                delivery.delivered_at = now
                outcome = "delivered"
            elif delivery.attempts >= limit:
                delivery.status = DeliveryStatus.DEAD
                outcome = "dead"
            else:
                delay = retry_delay_seconds(delivery.attempts)
                delivery.next_attempt_at = now + timedelta(seconds=delay)
                outcome = "retry"
            self.session.add(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    attempt=delivery.attempts,
                    at=now,
                    status_code=result.status_code,
                    latency_ms=result.latency_ms,
                    error=result.error,
                    outcome=outcome,
                )
            )
        await self.session.flush()
