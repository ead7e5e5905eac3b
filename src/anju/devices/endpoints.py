"""HTTP endpoints under /api/v1: the device registry, claiming, lifecycle and provisioning.

Like the accounts endpoints, these open their own transactions (:func:`run_device_boundary`)
so a refused claim or registration still commits its failure counter and audit entry.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query

from anju.accounts.deps import BearerToken
from anju.accounts.principal import Principal
from anju.accounts.service import AccountService
from anju.api.deps import PlatformDep
from anju.devices.ca import ca_public_key, gateway_name
from anju.devices.lifecycle import Status
from anju.devices.models import Device, DeviceOperation
from anju.devices.provisioning import (
    DynamicRegistration,
    ProvisioningService,
    device_topics,
)
from anju.devices.repository import DeviceFilter
from anju.devices.schemas import (
    AttributesIn,
    CaOut,
    DeviceOut,
    DynamicRegisterIn,
    DynamicRegisterOut,
    OperationOut,
    PlaceChangeIn,
    PlaceIn,
    PlaceOut,
    ReasonIn,
    RegisterIn,
    Topics,
)
from anju.devices.service import DeviceService, Place, run_device_boundary
from anju.platform import Platform
from anju.protocol.certificates import issuer_key_id

T = TypeVar("T")

DeviceIdPath = Annotated[str, Path(min_length=1, max_length=64)]
router = APIRouter(prefix="/api/v1", tags=["devices"])


async def _signed_in(
    platform: Platform, token: str, work: Callable[[DeviceService, Principal], Awaitable[T]]
) -> T:
    async def go(service: DeviceService) -> T:
        principal = await AccountService(platform, service.session).authenticate(token)
        return await work(service, principal)

    return await run_device_boundary(platform, go, DeviceService)


def _place(body: PlaceIn | None) -> Place | None:
    return Place(body.kind, body.ref) if body is not None else None


def device_out(device: Device) -> DeviceOut:
    """The API view of a device: state and certificate facts, never key material."""
    place = (
        PlaceOut(kind=device.place_kind, ref=device.place_ref)
        if device.place_kind is not None and device.place_ref is not None
        else None
    )
    return DeviceOut(
        id=device.id,
        type=device.device_type,
        product_key=device.product_key,
        status=device.status,
        org_id=device.org_id,
        place=place,
        firmware_version=device.firmware_version,
        online=device.online,
        battery_pct=device.battery_pct,
        signal_dbm=device.signal_dbm,
        last_seen_at=device.last_seen_at,
        attributes=json.loads(device.attributes or "{}"),
        reported=json.loads(device.reported or "{}"),
        cert_serial=device.cert_serial,
        cert_not_after=device.cert_not_after,
        registered_at=device.registered_at,
        created_at=device.created_at,
        updated_at=device.updated_at,
    )


async def _out(pending: Awaitable[Device]) -> DeviceOut:
    return device_out(await pending)


def _operation_out(op: DeviceOperation) -> OperationOut:
    return OperationOut(
        at=op.at,
        actor=op.actor,
        operation=op.operation,
        outcome=op.outcome,
        details=json.loads(op.details or "{}"),
    )


# --- registry ------------------------------------------------------------------------------
@router.get("/devices", response_model=list[DeviceOut])
async def list_devices(
    token: BearerToken,
    platform: PlatformDep,
    device_type: Annotated[str | None, Query(alias="type", max_length=32)] = None,
    status: Annotated[Status | None, Query()] = None,
    online: Annotated[bool | None, Query()] = None,
    place_kind: Annotated[str | None, Query(max_length=32)] = None,
    place_ref: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[DeviceOut]:
    """Devices of the caller's organisation, filtered by type, status, online and place."""
    flt = DeviceFilter(
        device_type=device_type,
        status=status.value if status is not None else None,
        online=online,
        place_kind=place_kind,
        place_ref=place_ref,
    )

    async def work(service: DeviceService, principal: Principal) -> list[DeviceOut]:
        devices = await service.list_devices(principal, flt, limit=limit, offset=offset)
        return [device_out(d) for d in devices]

    return await _signed_in(platform, token, work)


@router.get("/devices/{device_id}", response_model=DeviceOut)
async def get_device(
    device_id: DeviceIdPath, token: BearerToken, platform: PlatformDep
) -> DeviceOut:
    """One device (404 for another organisation's; an unclaimed one by exact id for claiming)."""

    async def work(service: DeviceService, principal: Principal) -> DeviceOut:
        return device_out(await service.get_device(principal, device_id))

    return await _signed_in(platform, token, work)


@router.get("/devices/{device_id}/operations", response_model=list[OperationOut])
async def device_operations(
    device_id: DeviceIdPath,
    token: BearerToken,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[OperationOut]:
    """Operation records of a device (newest first)."""

    async def work(service: DeviceService, principal: Principal) -> list[OperationOut]:
        ops = await service.operations(principal, device_id, limit=limit, offset=offset)
        return [_operation_out(op) for op in ops]

    return await _signed_in(platform, token, work)


@router.patch("/devices/{device_id}/attributes", response_model=DeviceOut)
async def update_attributes(
    device_id: DeviceIdPath, body: AttributesIn, token: BearerToken, platform: PlatformDep
) -> DeviceOut:
    """Merge operator attributes (a null value removes the key)."""

    async def work(service: DeviceService, principal: Principal) -> DeviceOut:
        return device_out(await service.update_attributes(principal, device_id, body.attributes))

    return await _signed_in(platform, token, work)


# --- claiming, place, lifecycle (second factor) -------------------------------------------
@router.post("/devices/{device_id}/register", response_model=DeviceOut)
async def register_device(
    device_id: DeviceIdPath, body: RegisterIn, token: BearerToken, platform: PlatformDep
) -> DeviceOut:
    """Claim an unregistered device for the caller's organisation with its label's claim code."""
    place = _place(body.place)

    async def work(service: DeviceService, principal: Principal) -> DeviceOut:
        device = await service.register_device(
            principal, device_id, claim_code=body.claim_code, place=place
        )
        return device_out(device)

    return await _signed_in(platform, token, work)


@router.put("/devices/{device_id}/place", response_model=DeviceOut)
async def set_place(
    device_id: DeviceIdPath, body: PlaceChangeIn, token: BearerToken, platform: PlatformDep
) -> DeviceOut:
    """Bind, move or (with null) unbind a device's place."""
    place = _place(body.place)

    async def work(service: DeviceService, principal: Principal) -> DeviceOut:
        return device_out(await service.set_place(principal, device_id, place))

    return await _signed_in(platform, token, work)


@router.post("/devices/{device_id}/suspend", response_model=DeviceOut)
async def suspend_device(
    device_id: DeviceIdPath, body: ReasonIn, token: BearerToken, platform: PlatformDep
) -> DeviceOut:
    """Take an active device out of service for a while (its handshakes are refused)."""
    return await _signed_in(
        platform,
        token,
        lambda s, p: _out(s.suspend(p, device_id, body.reason)),
    )


@router.post("/devices/{device_id}/resume", response_model=DeviceOut)
async def resume_device(
    device_id: DeviceIdPath, token: BearerToken, platform: PlatformDep
) -> DeviceOut:
    """Put a suspended device back into service."""
    return await _signed_in(platform, token, lambda s, p: _out(s.resume(p, device_id)))


@router.post("/devices/{device_id}/revoke", response_model=DeviceOut)
async def revoke_device(
    device_id: DeviceIdPath, body: ReasonIn, token: BearerToken, platform: PlatformDep
) -> DeviceOut:
    """Revoke a (possibly compromised) device: its certificate is refused from now on."""
    return await _signed_in(platform, token, lambda s, p: _out(s.revoke(p, device_id, body.reason)))


@router.post("/devices/{device_id}/decommission", response_model=DeviceOut)
async def decommission_device(
    device_id: DeviceIdPath, body: ReasonIn, token: BearerToken, platform: PlatformDep
) -> DeviceOut:
    """End a device's life: unbind it and destroy its wrapped root key (crypto-shredding)."""
    return await _signed_in(
        platform, token, lambda s, p: _out(s.decommission(p, device_id, body.reason))
    )


# --- provisioning (no sign-in) -------------------------------------------------------------
@router.get("/provisioning/ca", response_model=CaOut)
async def device_ca(platform: PlatformDep) -> CaOut:
    """The device CA public key (the devices' trust root) and the gateway's name."""
    key = ca_public_key(platform.keys)
    return CaOut(
        ca_public_key_pem=key.to_pem(),
        issuer_key_id=issuer_key_id(key).hex(),
        gateway_subject=gateway_name(platform.settings.audit_origin),
    )


@router.post("/provisioning/register", response_model=DynamicRegisterOut)
async def dynamic_register(body: DynamicRegisterIn, platform: PlatformDep) -> DynamicRegisterOut:
    """一型一密: a device proves its product secret and receives a certificate and root key."""
    request = DynamicRegistration(
        product_key=body.product_key,
        device_id=body.device_id,
        se_id=body.se_id,
        public_key=bytes.fromhex(body.public_key),
        timestamp=body.timestamp,
        nonce=bytes.fromhex(body.nonce),
        mac=bytes.fromhex(body.mac),
    )

    async def work(service: ProvisioningService) -> DynamicRegisterOut:
        result = await service.register_dynamic(request)
        return DynamicRegisterOut(
            device_id=result.device_id,
            certificate=result.certificate.encode().hex(),
            root_key_ciphertext=result.root_key_ciphertext.hex(),
            ca_public_key_pem=result.ca_public_key_pem,
            topics=Topics(**device_topics(result.device_id)),
        )

    return await run_device_boundary(platform, work, ProvisioningService)
