"""HTTP endpoints under /api/v1/leases (docs/leases.md).

Reading needs ``stays.read`` (or ``stays.manage``). Creating, activating and terminating leases
and the grace setting need ``stays.manage`` and a recent second factor; recording a payment
needs ``stays.manage`` only, so that a payment integration's API key can post notifications
(each applied once per ``idempotency_key``). Another organisation's leases are 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.deps import BearerToken
from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.api.deps import PlatformDep
from anju.leases.schemas import (
    GraceIn,
    LeaseIn,
    LeaseOut,
    LeaseSummaryOut,
    PaymentBody,
    PaymentOut,
    TerminateIn,
    lease_out,
    lease_summary,
    payment_out,
)
from anju.leases.service import LeaseService
from anju.platform import Platform
from anju.properties.guard import as_manager, as_reader

router = APIRouter(prefix="/api/v1/leases", tags=["leases"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]
Work = Callable[[LeaseService, str, Principal], Awaitable[Any]]


async def _read(platform: Platform, token: str, work: Work) -> Any:
    async def go(session: AsyncSession, org_id: str, principal: Principal) -> Any:
        return await work(LeaseService(platform, session), org_id, principal)

    return await as_reader(platform, token, Cap.STAYS_READ, Cap.STAYS_MANAGE, "leases.read", go)


async def _change(
    platform: Platform, token: str, action: str, work: Work, *, second_factor: bool = True
) -> Any:
    async def go(session: AsyncSession, org_id: str, principal: Principal) -> Any:
        return await work(LeaseService(platform, session), org_id, principal)

    return await as_manager(
        platform, token, Cap.STAYS_MANAGE, f"leases.{action}", go, second_factor=second_factor
    )


@router.post("", response_model=LeaseOut, status_code=status.HTTP_201_CREATED)
async def create_lease(body: LeaseIn, token: BearerToken, platform: PlatformDep) -> LeaseOut:
    """A draft lease of a room with its tenants and rent schedule."""

    async def work(svc: LeaseService, org_id: str, p: Principal) -> LeaseOut:
        return lease_out(await svc.create(p.actor, org_id, body.terms()))

    result: LeaseOut = await _change(platform, token, "created", work)
    return result


@router.get("", response_model=list[LeaseSummaryOut])
async def list_leases(
    token: BearerToken,
    platform: PlatformDep,
    room_id: Annotated[str | None, Query(max_length=36)] = None,
    lease_status: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[LeaseSummaryOut]:
    async def work(svc: LeaseService, org_id: str, _: Principal) -> list[LeaseSummaryOut]:
        rows = await svc.leases(
            org_id, room_id=room_id, status=lease_status, limit=limit, offset=offset
        )
        return [lease_summary(r) for r in rows]

    result: list[LeaseSummaryOut] = await _read(platform, token, work)
    return result


@router.get("/settings", response_model=GraceIn)
async def get_settings(token: BearerToken, platform: PlatformDep) -> GraceIn:
    """The organisation's default grace period of new leases."""

    async def work(svc: LeaseService, org_id: str, _: Principal) -> GraceIn:
        return GraceIn(grace_days=await svc.grace_days(org_id))

    result: GraceIn = await _read(platform, token, work)
    return result


@router.put("/settings", response_model=GraceIn)
async def put_settings(body: GraceIn, token: BearerToken, platform: PlatformDep) -> GraceIn:
    async def work(svc: LeaseService, org_id: str, p: Principal) -> GraceIn:
        return GraceIn(grace_days=await svc.set_grace_days(p.actor, org_id, body.grace_days))

    result: GraceIn = await _change(platform, token, "settings.changed", work)
    return result


@router.get("/{lease_id}", response_model=LeaseOut)
async def get_lease(lease_id: IdPath, token: BearerToken, platform: PlatformDep) -> LeaseOut:
    """A lease with its tenants, instalments and payments."""

    async def work(svc: LeaseService, org_id: str, _: Principal) -> LeaseOut:
        return lease_out(await svc.view(org_id, lease_id))

    result: LeaseOut = await _read(platform, token, work)
    return result


@router.post("/{lease_id}/activate", response_model=LeaseOut)
async def activate_lease(lease_id: IdPath, token: BearerToken, platform: PlatformDep) -> LeaseOut:
    """draft → active: the tenants get access to the room's locks and common doors."""

    async def work(svc: LeaseService, org_id: str, p: Principal) -> LeaseOut:
        await svc.activate(p.actor, org_id, lease_id)
        return lease_out(await svc.view(org_id, lease_id))

    result: LeaseOut = await _change(platform, token, "activated", work)
    return result


@router.post("/{lease_id}/terminate", response_model=LeaseOut)
async def terminate_lease(
    lease_id: IdPath, body: TerminateIn, token: BearerToken, platform: PlatformDep
) -> LeaseOut:
    """End the lease now: the tenants' access ends and the locks wipe it."""

    async def work(svc: LeaseService, org_id: str, p: Principal) -> LeaseOut:
        await svc.terminate(p.actor, org_id, lease_id, body.reason)
        return lease_out(await svc.view(org_id, lease_id))

    result: LeaseOut = await _change(platform, token, "terminated", work)
    return result


@router.post("/{lease_id}/payments", response_model=PaymentOut)
async def record_payment(
    lease_id: IdPath,
    body: PaymentBody,
    token: BearerToken,
    platform: PlatformDep,
    response: Response,
) -> PaymentOut:
    """Record a payment (201), or answer a replay of the same idempotency key (200) without
    applying it again. Clearing the arrears unfreezes the tenants at once."""

    async def work(svc: LeaseService, org_id: str, p: Principal) -> PaymentOut:
        row, replayed = await svc.pay(p.actor, org_id, lease_id, body.payment())
        return payment_out(row, replayed)

    result: PaymentOut = await _change(
        platform, token, "payment.recorded", work, second_factor=False
    )
    response.status_code = status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED
    return result
