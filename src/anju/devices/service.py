"""Device registry rules: visibility, registration (claim), place, lifecycle, state, handshake.

Organisation isolation: a principal sees the devices of its own organisation; any other
device is "not found". The one exception is claiming: a device nobody has registered yet
(``manufactured``) is visible, by its exact id only, to holders of ``devices.manage`` — and
registering it needs the claim code printed on its label (see :func:`claim_code`).

Refusals that must leave a trace although the transaction rolls back (a wrong claim code
raises the device's failure counter; a refused transition is an audit event) are registered
with :meth:`DeviceService.after_rollback`; :func:`run_device_boundary` commits them in a
second transaction, then re-raises.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.accounts.repository import AccountsRepository
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.audit import AuditLog, NewEntry
from anju.db import run_with_failure_effects
from anju.devices.lifecycle import (
    HANDSHAKE_STATUSES,
    HEX_ID,
    MAX_CLAIM_FAILURES,
    PLACE_KINDS,
    PLACE_REF,
    REASONS,
    ClaimLocked,
    ClaimRefused,
    Status,
    check_transition,
    claim_code_matches,
    root_key_aad,
)
from anju.devices.models import Device, DeviceOperation
from anju.devices.repository import DeviceFilter, DevicesRepository
from anju.errors import AnjuError, Conflict, Forbidden, InvalidInput, KeyUnavailable, NotFound
from anju.platform import Platform
from anju.protocol.certificates import Certificate, CertKind
from anju.protocol.errors import ProtocolError

T = TypeVar("T")
S = TypeVar("S", bound="DeviceService")
Effect = Callable[["DeviceService"], Awaitable[None]]
Details = dict[str, str | int | bool | None]

MAX_ATTRIBUTES = 64
MAX_ATTRIBUTE_VALUE = 200
ATTRIBUTE_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
AttributeValue = str | int | float | bool | None


class IllegalPlaceChange(Conflict):
    code = "illegal_transition"


@dataclass(frozen=True)
class Place:
    """Where a device is installed: a kind and a free reference (properties arrive later)."""

    kind: str
    ref: str

    def __post_init__(self) -> None:
        if self.kind not in PLACE_KINDS:
            raise InvalidInput(
                f"未知位置类型 / unknown place kind {self.kind!r}",
                details={"known_kinds": list(PLACE_KINDS)},
            )
        if not PLACE_REF.match(self.ref) or self.ref != self.ref.strip():
            raise InvalidInput("位置引用须为 1–100 个可见字符 / place reference: 1–100 characters")


def not_found() -> NotFound:
    return NotFound("设备不存在 / no such device")


def check_device_id(device_id: str) -> str:
    """A device id must be 32 lowercase hex characters."""
    if not HEX_ID.match(device_id):
        raise InvalidInput("设备标识须为 32 位小写十六进制 / device id: 32 lowercase hex")
    return device_id


def check_reason(reason: str | None) -> str | None:
    if reason is not None and reason not in REASONS:
        raise InvalidInput(
            f"未知原因 / unknown reason {reason!r}", details={"known_reasons": list(REASONS)}
        )
    return reason


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text or "{}")
    return value if isinstance(value, dict) else {}


def _dump(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_attributes(changes: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Validate operator attribute changes (a null value removes the key)."""
    checked: dict[str, AttributeValue] = {}
    for key, value in changes.items():
        if not isinstance(key, str) or not ATTRIBUTE_KEY.match(key):
            raise InvalidInput(
                "属性名须为 1–64 个小写字母、数字或 _ . - / attribute names: 1–64 of a-z 0-9 _ . -"
            )
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_VALUE:
            raise InvalidInput("属性值过长 / attribute values are at most 200 characters")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput("属性值须为有限数 / attribute numbers must be finite")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidInput("属性值只能是字符串、数字、布尔或空 / attribute values: scalar only")
        checked[key] = value
    return checked


class DeviceService:
    """The device registry of one transaction."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self.platform = platform
        self.session = session
        self.keys = platform.keys
        self.clock = platform.clock
        self.repo = DevicesRepository(session)
        self.audit = AuditLog(platform)
        self._effects: list[Effect] = []

    # --- failure effects -------------------------------------------------------------------
    def after_rollback(self, effect: Effect) -> None:
        """Run ``effect`` in a new transaction if this one fails (see module docstring)."""
        self._effects.append(effect)

    def pending_effects(self) -> list[Effect]:
        return list(self._effects)

    def _deny(
        self,
        error: AnjuError,
        *,
        action: str,
        actor: str,
        org_id: str | None,
        device_id: str | None,
        details: Details | None = None,
    ) -> AnjuError:
        """Record a refusal as a ``denied`` audit entry once the transaction rolled back."""

        async def record(svc: DeviceService) -> None:
            await svc.audit.record(
                svc.session,
                action=action,
                actor=actor,
                org_id=org_id,
                target=f"device:{device_id}" if device_id else None,
                outcome="denied",
                details={"reason": error.code, **(details or {})},
            )

        self.after_rollback(record)
        return error

    # --- shared helpers --------------------------------------------------------------------
    def require(self, principal: Principal, capability: Cap) -> None:
        AccountService.require(principal, capability)

    def require_second_factor(self, principal: Principal) -> None:
        AccountService(self.platform, self.session).require_second_factor(principal)

    async def record_operation(
        self,
        device: Device,
        *,
        actor: str,
        operation: str,
        outcome: str = "success",
        details: Details | None = None,
    ) -> None:
        """Keep an operation record of ``device`` (R11), owned by its current organisation.

        A plain INSERT (no ORM object: nothing reads it back in the transaction)."""
        await self.session.execute(
            insert(DeviceOperation).values(
                device_id=device.id,
                org_id=device.org_id,
                at=self.clock.now(),
                actor=actor,
                operation=operation,
                outcome=outcome,
                details=_dump(details or {}),
            )
        )

    async def _audit(
        self, device: Device, *, action: str, actor: str, details: Details | None = None
    ) -> None:
        await self.audit.record_at_commit(
            self.session,
            [NewEntry(action, actor, device.org_id, f"device:{device.id}", details=details)],
        )

    async def _change(
        self,
        device: Device,
        *,
        actor: str,
        operation: str,
        details: Details | None = None,
    ) -> None:
        """The two traces every change leaves: an operation record and an audit entry."""
        device.updated_at = self.clock.now()
        await self.record_operation(device, actor=actor, operation=operation, details=details)
        await self._audit(device, action=f"devices.{operation}", actor=actor, details=details)

    # --- visibility ------------------------------------------------------------------------
    async def _visible(
        self, principal: Principal, device_id: str, *, for_update: bool = False
    ) -> Device:
        """A device the principal may see; 404 for every other (existence is not leaked)."""
        if not HEX_ID.match(device_id):
            raise not_found()
        device = await self.repo.device(device_id, for_update=for_update)
        if device is None:
            raise not_found()
        if principal.org_id is not None and device.org_id == principal.org_id:
            return device
        if (
            device.org_id is None
            and device.status == Status.MANUFACTURED
            and principal.has(Cap.DEVICES_MANAGE)
        ):
            return device  # unclaimed: visible by exact id for claiming
        raise not_found()

    async def _owned(self, principal: Principal, device_id: str) -> Device:
        """A device of the principal's own organisation (for changes), else 404."""
        device = await self._visible(principal, device_id, for_update=True)
        if device.org_id is None:
            raise not_found()
        return device

    async def get_device(self, principal: Principal, device_id: str) -> Device:
        """One device of the caller's organisation (or an unclaimed one, for claiming)."""
        if not (principal.has(Cap.DEVICES_READ) or principal.has(Cap.DEVICES_MANAGE)):
            self.require(principal, Cap.DEVICES_READ)
        return await self._visible(principal, device_id)

    async def list_devices(
        self, principal: Principal, flt: DeviceFilter, *, limit: int = 100, offset: int = 0
    ) -> list[Device]:
        """Devices of the caller's organisation, filtered."""
        self.require(principal, Cap.DEVICES_READ)
        if principal.org_id is None:
            return []
        return list(
            await self.repo.devices_of_org(principal.org_id, flt, limit=limit, offset=offset)
        )

    async def operations(
        self, principal: Principal, device_id: str, *, limit: int = 100, offset: int = 0
    ) -> list[DeviceOperation]:
        """Operation records of a device made while it belonged to the caller's organisation."""
        self.require(principal, Cap.DEVICES_READ)
        device = await self._visible(principal, device_id)
        if device.org_id is None:
            return []
        return list(
            await self.repo.operations(device.id, device.org_id, limit=limit, offset=offset)
        )

    # --- registration (claiming) -----------------------------------------------------------
    async def register_device(
        self,
        principal: Principal,
        device_id: str,
        *,
        claim_code: str,
        place: Place | None = None,
    ) -> Device:
        """Claim an unregistered device for the caller's organisation with its label's code."""
        self.require(principal, Cap.DEVICES_MANAGE)
        self.require_second_factor(principal)
        if principal.org_id is None:
            raise Forbidden(
                "平台级账号不属于任何机构，请用命令行登记 / a platform-level account belongs to "
                "no organisation; use `anju devices register --org`"
            )
        device = await self._visible(principal, device_id, for_update=True)
        if device.org_id is not None:
            raise self._deny(
                Conflict("设备已登记 / the device is already registered"),
                action="devices.registered",
                actor=principal.actor,
                org_id=principal.org_id,
                device_id=device.id,
            )
        if device.claim_failures >= MAX_CLAIM_FAILURES:
            raise self._deny(
                ClaimLocked(
                    "认领码错误次数过多，请联系平台运维 / too many wrong claim codes; the platform "
                    "operator must register this device (`anju devices register`)"
                ),
                action="devices.registered",
                actor=principal.actor,
                org_id=principal.org_id,
                device_id=device.id,
            )
        if not self._claim_code_ok(device, claim_code):
            self.after_rollback(_count_claim_failure(device.id, principal))
            raise ClaimRefused("认领码错误 / wrong claim code")
        return await self._bind(device, principal.org_id, place, actor=principal.actor)

    async def register_device_as_operator(
        self, device_id: str, org_id: str, place: Place | None = None, *, actor: str = "cli"
    ) -> Device:
        """Register a device for ``org_id`` (platform operator at the CLI: no claim code)."""
        check_device_id(device_id)
        device = await self.repo.device(device_id, for_update=True)
        if device is None:
            raise not_found()
        org = await AccountsRepository(self.session).organisation(org_id)
        if org is None:
            raise NotFound("机构不存在 / no such organisation")
        if device.org_id is not None:
            raise Conflict("设备已登记 / the device is already registered")
        device.claim_failures = 0
        return await self._bind(device, org_id, place, actor=actor)

    def _claim_code_ok(self, device: Device, presented: str) -> bool:
        if device.root_key_wrapped is None or len(presented) > 32:
            return False
        root = self.keys.unwrap(device.root_key_wrapped, root_key_aad(device.id))
        return claim_code_matches(root, presented)

    async def _bind(
        self, device: Device, org_id: str, place: Place | None, *, actor: str
    ) -> Device:
        self._check_transition(device, Status.REGISTERED, actor=actor, operation="registered")
        if place is not None:
            await self._check_place_free(org_id, place, device.id)
        now = self.clock.now()
        device.org_id = org_id
        device.status = Status.REGISTERED
        device.registered_at = now
        device.place_kind = place.kind if place else None
        device.place_ref = place.ref if place else None
        await self.session.flush()
        details: Details = {"place_kind": device.place_kind, "place_ref": device.place_ref}
        await self._change(device, actor=actor, operation="registered", details=details)
        return device

    async def _check_place_free(self, org_id: str, place: Place, device_id: str) -> None:
        holder = await self.repo.device_at_place(org_id, place.kind, place.ref)
        if holder is not None and holder.id != device_id:
            raise Conflict(
                "该位置已绑定其他设备 / another device is bound to this place",
                details={"place_kind": place.kind},
            )

    # --- place, attributes -----------------------------------------------------------------
    async def set_place(self, principal: Principal, device_id: str, place: Place | None) -> Device:
        """Bind a device to a place, move it, or unbind it (None); second factor required."""
        self.require(principal, Cap.DEVICES_MANAGE)
        self.require_second_factor(principal)
        device = await self._owned(principal, device_id)
        if device.status in (Status.REVOKED, Status.DECOMMISSIONED):
            raise IllegalPlaceChange(
                f"{device.status} 设备不能绑定位置 / a {device.status} device cannot be bound",
            )
        if place is not None and device.org_id is not None:
            await self._check_place_free(device.org_id, place, device.id)
        device.place_kind = place.kind if place else None
        device.place_ref = place.ref if place else None
        await self.session.flush()
        operation = "place.bound" if place else "place.unbound"
        details: Details = {"place_kind": device.place_kind, "place_ref": device.place_ref}
        await self._change(device, actor=principal.actor, operation=operation, details=details)
        return device

    async def update_attributes(
        self, principal: Principal, device_id: str, changes: Mapping[str, Any]
    ) -> Device:
        """Merge operator attributes into a device's (a null value removes the key)."""
        self.require(principal, Cap.DEVICES_MANAGE)
        checked = check_attributes(changes)
        device = await self._owned(principal, device_id)
        attributes = _json_object(device.attributes)
        for key, value in checked.items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
        if len(attributes) > MAX_ATTRIBUTES:
            raise InvalidInput(
                f"属性最多 {MAX_ATTRIBUTES} 个 / at most {MAX_ATTRIBUTES} attributes"
            )
        device.attributes = _dump(attributes)
        details: Details = {"keys": ",".join(sorted(checked))[:200]}
        await self._change(
            device, actor=principal.actor, operation="attributes.updated", details=details
        )
        return device

    # --- lifecycle -------------------------------------------------------------------------
    def _check_transition(
        self, device: Device, target: Status, *, actor: str, operation: str
    ) -> None:
        try:
            check_transition(device.status, target, operation)
        except AnjuError as error:
            raise self._deny(
                error,
                action=f"devices.{operation}",
                actor=actor,
                org_id=device.org_id,
                device_id=device.id,
                details={"status": device.status},
            ) from None

    async def suspend(
        self, principal: Principal, device_id: str, reason: str | None = None
    ) -> Device:
        """Take an active device out of service for a while (its handshakes are refused)."""
        return await self._lifecycle(principal, device_id, Status.SUSPENDED, "suspended", reason)

    async def resume(self, principal: Principal, device_id: str) -> Device:
        """Put a suspended device back into service."""
        return await self._lifecycle(principal, device_id, Status.ACTIVE, "resumed", None)

    async def revoke(
        self, principal: Principal, device_id: str, reason: str | None = None
    ) -> Device:
        """Revoke a (possibly compromised) device: its certificate is refused from now on."""
        return await self._lifecycle(principal, device_id, Status.REVOKED, "revoked", reason)

    async def decommission(
        self, principal: Principal, device_id: str, reason: str | None = None
    ) -> Device:
        """End a device's life: unbind it and destroy its wrapped root key (crypto-shredding)."""
        return await self._lifecycle(
            principal, device_id, Status.DECOMMISSIONED, "decommissioned", reason
        )

    async def _lifecycle(
        self,
        principal: Principal,
        device_id: str,
        target: Status,
        operation: str,
        reason: str | None,
    ) -> Device:
        self.require(principal, Cap.DEVICES_MANAGE)
        self.require_second_factor(principal)
        check_reason(reason)
        device = await self._owned(principal, device_id)
        await self.apply_lifecycle(
            device, target, actor=principal.actor, operation=operation, reason=reason
        )
        return device

    async def apply_lifecycle(
        self,
        device: Device,
        target: Status,
        *,
        actor: str,
        operation: str,
        reason: str | None = None,
    ) -> None:
        """Move ``device`` to ``target`` (checked), with the side effects that status has."""
        self._check_transition(device, target, actor=actor, operation=operation)
        details: Details = {"reason": reason}
        if target == Status.DECOMMISSIONED:
            details["root_key_destroyed"] = device.root_key_wrapped is not None
            details["place_kind"] = device.place_kind
            details["place_ref"] = device.place_ref
            device.root_key_wrapped = None  # crypto-shredding: the only copy outside the SE
            device.place_kind = None
            device.place_ref = None
        if target in (Status.REVOKED, Status.DECOMMISSIONED):
            device.online = False
        device.status = target
        await self.session.flush()
        await self._change(device, actor=actor, operation=operation, details=details)

    async def operator_lifecycle(
        self, device_id: str, target: Status, operation: str, reason: str | None, *, actor: str
    ) -> Device:
        """A lifecycle change by the platform operator at the CLI (any organisation)."""
        check_device_id(device_id)
        check_reason(reason)
        device = await self.repo.device(device_id, for_update=True)
        if device is None:
            raise not_found()
        await self.apply_lifecycle(device, target, actor=actor, operation=operation, reason=reason)
        return device

    # --- for the gateway -------------------------------------------------------------------
    async def root_key_for_handshake(self, certificate: Certificate) -> bytes:
        """The root key of the device a (CA-verified) certificate names, if it may connect.

        Raises ``ProtocolError("device_rejected")`` with ``details.reason`` when the device is
        unknown, not registered, suspended, revoked or decommissioned, or when the certificate
        is not the one on record (serial, SE id, product or public key differ).
        """

        def rejected(reason: str) -> ProtocolError:
            return ProtocolError(
                "device_rejected", "设备不被接纳 / device rejected", details={"reason": reason}
            )

        if certificate.kind != CertKind.DEVICE:
            raise rejected("not_a_device_certificate")
        device = (
            await self.repo.device(certificate.subject)
            if HEX_ID.match(certificate.subject)
            else None
        )
        if device is None:
            raise rejected("unknown_device")
        if (
            device.cert_serial != certificate.serial.hex()
            or device.se_id != certificate.se_id
            or device.product_key != certificate.product
            or device.public_key != certificate.public_key.raw
        ):
            raise rejected("certificate_mismatch")
        if device.status not in HANDSHAKE_STATUSES:
            raise rejected(f"status_{device.status}")
        if device.root_key_wrapped is None:
            raise rejected("no_root_key")
        try:
            return self.keys.unwrap(device.root_key_wrapped, root_key_aad(device.id))
        except KeyUnavailable:
            raise rejected("root_key_unavailable") from None

    async def mark_online(self, device_id: str) -> Device:
        """The device completed a handshake: online now; a first connection activates it."""
        device = await self._for_gateway(device_id)
        now = self.clock.now()
        device.online = True
        device.last_seen_at = now
        device.updated_at = now
        if device.status == Status.REGISTERED:
            device.status = Status.ACTIVE
            await self._change(device, actor="system", operation="activated")
        await self.session.flush()
        return device

    async def mark_offline(self, device_id: str) -> Device:
        """The device's connection ended (or its session timed out)."""
        device = await self._for_gateway(device_id)
        device.online = False
        device.updated_at = self.clock.now()
        await self.session.flush()
        return device

    async def record_state(
        self,
        device_id: str,
        *,
        battery_pct: int | None = None,
        signal_dbm: int | None = None,
        firmware_version: str | None = None,
        reported: Mapping[str, Any] | None = None,
    ) -> Device:
        """Store a state report (battery, signal, firmware, other reported attributes)."""
        device = await self._for_gateway(device_id)
        now = self.clock.now()
        if battery_pct is not None:
            if not 0 <= battery_pct <= 100:
                raise InvalidInput("电量须在 0–100 之间 / battery must be 0–100 %")
            device.battery_pct = battery_pct
        if signal_dbm is not None:
            if not -200 <= signal_dbm <= 50:
                raise InvalidInput("信号强度超出范围 / signal strength out of range")
            device.signal_dbm = signal_dbm
        if firmware_version is not None:
            if not 1 <= len(firmware_version) <= 64:
                raise InvalidInput("固件版本须为 1–64 个字符 / firmware version: 1–64 characters")
            device.firmware_version = firmware_version
        if reported:
            merged = _json_object(device.reported)
            for key, value in check_attributes(reported).items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            if len(merged) > MAX_ATTRIBUTES:
                raise InvalidInput(f"上报属性最多 {MAX_ATTRIBUTES} 个 / too many reported keys")
            device.reported = _dump(merged)
        device.last_seen_at = now
        device.updated_at = now
        await self.session.flush()
        return device

    async def _for_gateway(self, device_id: str) -> Device:
        check_device_id(device_id)
        device = await self.repo.device(device_id, for_update=True)
        if device is None:
            raise not_found()
        return device


def _count_claim_failure(device_id: str, principal: Principal) -> Effect:
    async def effect(svc: DeviceService) -> None:
        device = await svc.repo.device(device_id, for_update=True)
        if device is None:
            return
        device.claim_failures += 1
        await svc.audit.record(
            svc.session,
            action="devices.registered",
            actor=principal.actor,
            org_id=principal.org_id,
            target=f"device:{device_id}",
            outcome="denied",
            details={"reason": "claim_code_invalid", "failures": device.claim_failures},
        )

    return effect


async def run_device_boundary(
    platform: Platform,
    work: Callable[[S], Awaitable[T]],
    service_type: Callable[[Platform, AsyncSession], S],
) -> T:
    """Run ``work`` in one transaction; failure effects survive a refusal (see anju.db)."""
    return await run_with_failure_effects(
        platform.db,
        lambda session: service_type(platform, session),
        work,
        lambda service: service.pending_effects(),
        lambda session: DeviceService(platform, session),
    )


def utc_seconds(moment: datetime) -> int:
    """Unix seconds of an aware datetime (certificates count in seconds)."""
    return int(moment.timestamp())
