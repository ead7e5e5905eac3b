"""HTTP endpoints under /api/v1/firmware: packages and staged rollouts (docs/firmware.md).

Reading needs ``devices.read``; uploading and rollout changes need ``devices.manage`` and a recent
second factor. Like the device endpoints these open their own transactions
(:func:`run_firmware_boundary`) so a refused upload still commits its audit entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Path, Query, Request, status

from anju.accounts.deps import BearerToken
from anju.accounts.principal import Principal
from anju.accounts.service import AccountService
from anju.api.deps import PlatformDep
from anju.firmware.rules import DeviceState, RolloutStatus
from anju.firmware.schemas import (
    PackageOut,
    RolloutDeviceOut,
    RolloutIn,
    RolloutOut,
    package_out,
    rollout_device_out,
    rollout_out,
)
from anju.firmware.service import FirmwareService, run_firmware_boundary
from anju.platform import Platform

T = TypeVar("T")

router = APIRouter(prefix="/api/v1/firmware", tags=["firmware"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Action = Literal["start", "pause", "resume", "cancel"]


async def _signed_in(
    platform: Platform, token: str, work: Callable[[FirmwareService, Principal], Awaitable[T]]
) -> T:
    async def go(service: FirmwareService) -> T:
        principal = await AccountService(platform, service.session).authenticate(token)
        return await work(service, principal)

    return await run_firmware_boundary(platform, go)


@router.post(
    "/packages",
    response_model=PackageOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def upload_package(request: Request, token: BearerToken, platform: PlatformDep) -> PackageOut:
    """Upload a signed package file (``anju firmware sign``); it must verify completely."""
    data = await request.body()

    async def work(service: FirmwareService, principal: Principal) -> PackageOut:
        return package_out(await service.upload_as(principal, data))

    return await _signed_in(platform, token, work)


@router.get("/packages", response_model=list[PackageOut])
async def list_packages(
    token: BearerToken,
    platform: PlatformDep,
    product: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PackageOut]:
    """Packages, newest version first within each product."""

    async def work(service: FirmwareService, principal: Principal) -> list[PackageOut]:
        rows = await service.packages(principal, product, limit=limit, offset=offset)
        return [package_out(p) for p in rows]

    return await _signed_in(platform, token, work)


@router.get("/packages/{package_id}", response_model=PackageOut)
async def get_package(package_id: IdPath, token: BearerToken, platform: PlatformDep) -> PackageOut:
    async def work(service: FirmwareService, principal: Principal) -> PackageOut:
        return package_out(await service.package(principal, package_id))

    return await _signed_in(platform, token, work)


@router.post("/rollouts", response_model=RolloutOut, status_code=status.HTTP_201_CREATED)
async def create_rollout(body: RolloutIn, token: BearerToken, platform: PlatformDep) -> RolloutOut:
    """A draft rollout of a package to the organisation's devices (start it to begin)."""

    async def work(service: FirmwareService, principal: Principal) -> RolloutOut:
        rollout = await service.create_rollout_as(principal, body.spec())
        return rollout_out(await service.summarise(rollout))

    return await _signed_in(platform, token, work)


@router.get("/rollouts", response_model=list[RolloutOut])
async def list_rollouts(
    token: BearerToken,
    platform: PlatformDep,
    rollout_status: Annotated[RolloutStatus | None, Query(alias="status")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[RolloutOut]:
    """The organisation's rollouts, newest first."""

    async def work(service: FirmwareService, principal: Principal) -> list[RolloutOut]:
        org_id = service.readable_org(principal)
        rows = await service.rollouts(org_id, rollout_status, limit=limit, offset=offset)
        return [rollout_out(await service.summarise(r)) for r in rows]

    return await _signed_in(platform, token, work)


@router.get("/rollouts/{rollout_id}", response_model=RolloutOut)
async def get_rollout(rollout_id: IdPath, token: BearerToken, platform: PlatformDep) -> RolloutOut:
    """A rollout with its device counts per state and per stage."""

    async def work(service: FirmwareService, principal: Principal) -> RolloutOut:
        return rollout_out(await service.summary(service.readable_org(principal), rollout_id))

    return await _signed_in(platform, token, work)


@router.get("/rollouts/{rollout_id}/devices", response_model=list[RolloutDeviceOut])
async def rollout_devices(
    rollout_id: IdPath,
    token: BearerToken,
    platform: PlatformDep,
    state: Annotated[DeviceState | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[RolloutDeviceOut]:
    """The rollout's devices in rollout order, optionally in one state."""

    async def work(service: FirmwareService, principal: Principal) -> list[RolloutDeviceOut]:
        rows = await service.rollout_devices(
            service.readable_org(principal), rollout_id, state, limit=limit, offset=offset
        )
        return [rollout_device_out(r) for r in rows]

    return await _signed_in(platform, token, work)


@router.post("/rollouts/{rollout_id}/{action}", response_model=RolloutOut)
async def act_on_rollout(
    rollout_id: IdPath, action: Action, token: BearerToken, platform: PlatformDep
) -> RolloutOut:
    """Start, pause, resume or cancel a rollout (second factor required)."""

    async def work(service: FirmwareService, principal: Principal) -> RolloutOut:
        rollout = await service.act_as(principal, rollout_id, action)
        return rollout_out(await service.summarise(rollout))

    return await _signed_in(platform, token, work)
