"""HTTP endpoints under /api/v1/webhooks: endpoints (secret shown once) and the delivery log."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from anju.accounts.deps import CurrentPrincipal
from anju.api.deps import DbSession, PlatformDep
from anju.webhooks.models import WebhookDelivery, WebhookEndpoint
from anju.webhooks.rules import DeliveryStatus
from anju.webhooks.service import WebhookService

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=8, max_length=2000)]
    event_types: Annotated[list[str], Field(min_length=1, max_length=20)]
    description: Annotated[str, Field(max_length=200)] = ""


class EndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str
    active: bool
    created_by: str
    created_at: datetime


class CreatedEndpointOut(EndpointOut):
    secret: str  # shown once: keep it to verify signatures


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    outcome: str


class DeliveryDetailOut(DeliveryOut):
    attempt_log: list[AttemptOut]


def endpoint_out(e: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=e.id,
        url=e.url,
        event_types=json.loads(e.event_types),
        description=e.description,
        active=e.active,
        created_by=e.created_by,
        created_at=e.created_at,
    )


def delivery_out(d: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        event_id=d.event_id,
        event_type=d.event_type,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
    )


@router.post("", response_model=CreatedEndpointOut, status_code=status.HTTP_201_CREATED)
async def create_endpoint(
    body: EndpointIn, principal: CurrentPrincipal, platform: PlatformDep, session: DbSession
) -> CreatedEndpointOut:
    """Register a receiver (second factor required); the signing secret is in this answer only."""
    created = await WebhookService(platform, session).create_endpoint(
        principal, body.url, body.event_types, body.description
    )
    out = endpoint_out(created.endpoint)
    return CreatedEndpointOut(**out.model_dump(), secret=created.secret)


@router.get("", response_model=list[EndpointOut])
async def list_endpoints(
    principal: CurrentPrincipal, platform: PlatformDep, session: DbSession
) -> list[EndpointOut]:
    return [endpoint_out(e) for e in await WebhookService(platform, session).endpoints(principal)]


@router.post("/{endpoint_id}/disable", response_model=EndpointOut)
async def disable_endpoint(
    endpoint_id: IdPath, principal: CurrentPrincipal, platform: PlatformDep, session: DbSession
) -> EndpointOut:
    """Stop sending to the endpoint (second factor required)."""
    endpoint = await WebhookService(platform, session).disable_endpoint(principal, endpoint_id)
    return endpoint_out(endpoint)


@router.get("/{endpoint_id}/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    endpoint_id: IdPath,
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[DeliveryOut]:
    """The endpoint's delivery log, newest first."""
    rows = await WebhookService(platform, session).deliveries(
        principal, endpoint_id, delivery_status, limit=limit, offset=offset
    )
    return [delivery_out(d) for d in rows]


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetailOut)
async def get_delivery(
    delivery_id: IdPath, principal: CurrentPrincipal, platform: PlatformDep, session: DbSession
) -> DeliveryDetailOut:
    """One delivery with every attempt (status code, latency, error)."""
    delivery, attempts = await WebhookService(platform, session).attempts(principal, delivery_id)
    log = [
        AttemptOut(
            attempt=a.attempt,
            at=a.at,
            status_code=a.status_code,
            latency_ms=a.latency_ms,
            error=a.error,
            outcome=a.outcome,
        )
        for a in attempts
    ]
    return DeliveryDetailOut(**delivery_out(delivery).model_dump(), attempt_log=log)
