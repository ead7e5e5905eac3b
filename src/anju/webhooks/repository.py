"""Queries of webhook endpoints, deliveries and attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from anju.webhooks.rules import DeliveryStatus


class WebhooksRepository:
    """Reads and writes of the webhook tables."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        return await self.session.get(WebhookEndpoint, endpoint_id)

    async def endpoints(self, org_id: str | None) -> Sequence[WebhookEndpoint]:
        query = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        if org_id is not None:
            query = query.where(WebhookEndpoint.org_id == org_id)
        return (await self.session.execute(query)).scalars().all()

    async def active_endpoints(self, org_id: str) -> Sequence[WebhookEndpoint]:
        query = select(WebhookEndpoint).where(
            WebhookEndpoint.org_id == org_id, WebhookEndpoint.active.is_(True)
        )
        return (await self.session.execute(query)).scalars().all()

    async def delivery(self, delivery_id: str) -> WebhookDelivery | None:
        return await self.session.get(WebhookDelivery, delivery_id)

    async def deliveries(
        self, endpoint_id: str, status: str | None, *, limit: int, offset: int
    ) -> Sequence[WebhookDelivery]:
        query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        return (await self.session.execute(query.limit(limit).offset(offset))).scalars().all()

    async def attempts(self, delivery_id: str) -> Sequence[WebhookAttempt]:
        query = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def due(self, now: datetime, limit: int) -> Sequence[WebhookDelivery]:
        """Pending deliveries due now, oldest first, locked (others' locked rows skipped)."""
        query = (
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(query)).scalars().all()

    async def purge_finished(self, before: datetime) -> int:
        """Delete delivered and dead deliveries created before ``before`` (attempts cascade)."""
        ids = select(WebhookDelivery.id).where(
            WebhookDelivery.status != DeliveryStatus.PENDING, WebhookDelivery.created_at < before
        )
        await self.session.execute(
            delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids))
        )
        result = await self.session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids))
        )
        return int(getattr(result, "rowcount", 0) or 0)
