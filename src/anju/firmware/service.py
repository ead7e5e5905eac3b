"""Firmware packages and rollouts for operators (docs/firmware.md).

Packages are platform-wide: anyone with ``devices.read`` sees them; uploading needs
``devices.manage`` and a recent second factor, and the package must verify completely (signer
certificate → device CA, signature → signer key, image size and SM3) — a tampered or unsigned
package is refused (``firmware_refused``) and the refusal is audited. Rollouts belong to an
organisation (HTTP) or to the platform operator (CLI, ``org_id=None``: devices of every
organisation); another organisation's rollout is "not found".
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.audit import AuditLog
from anju.db import new_id, run_with_failure_effects
from anju.devices.ca import ca_public_key
from anju.devices.commands.rules import MAX_TTL_SECONDS
from anju.devices.lifecycle import HANDSHAKE_STATUSES, HEX_ID
from anju.devices.models import Device
from anju.devices.permissions import require_device_manager, require_device_reader
from anju.errors import Forbidden, InvalidInput, NotFound
from anju.firmware.models import FirmwarePackage, FirmwareRollout, FirmwareRolloutDevice
from anju.firmware.progress import Details, RolloutProgress
from anju.firmware.repository import FirmwareRepository
from anju.firmware.rules import (
    ACTIONS,
    DEFAULT_COMMAND_TTL_SECONDS,
    DEFAULT_FAILURE_PCT,
    DEFAULT_STAGES,
    DEFAULT_SUCCESS_PCT,
    MAX_EXPLICIT_DEVICES,
    PAUSED_BY_OPERATOR,
    DeviceState,
    FirmwareRefused,
    IllegalRolloutTransition,
    NoEligibleDevices,
    PackageExists,
    RolloutStatus,
    check_percent,
    check_stages,
    stage_of,
)
from anju.platform import Platform
from anju.protocol.errors import ProtocolError
from anju.protocol.firmware import (
    MAX_PACKAGE_BYTES,
    Package,
    check_version,
    reported_version,
    version_key,
)

T = TypeVar("T")
Effect = Callable[["FirmwareService"], Awaitable[None]]
_ELIGIBLE = [str(s) for s in HANDSHAKE_STATUSES]


def package_not_found() -> NotFound:
    return NotFound("固件包不存在 / no such firmware package")


def rollout_not_found() -> NotFound:
    return NotFound("升级任务不存在 / no such rollout")


def sortable_version(version: str) -> str:
    """A version as fixed-width text that sorts like the version ("000001.000002.…")."""
    return ".".join(f"{part:06d}" for part in version_key(version))[:32]


@dataclass(frozen=True)
class RolloutSpec:
    """What an operator asks for: a package, which devices, stages and thresholds."""

    package_id: str
    device_ids: tuple[str, ...] | None = None  # None: every eligible device of the product
    from_version: str | None = None  # only devices reporting this version
    stages: tuple[int, ...] = DEFAULT_STAGES
    success_threshold_pct: int = DEFAULT_SUCCESS_PCT
    failure_threshold_pct: int = DEFAULT_FAILURE_PCT
    command_ttl_seconds: int = DEFAULT_COMMAND_TTL_SECONDS


@dataclass(frozen=True)
class RolloutSummary:
    """A rollout with how many of its devices are in each state, overall and per stage."""

    rollout: FirmwareRollout
    package: FirmwarePackage
    states: dict[str, int]
    stages: list[dict[str, int]]


class FirmwareService:
    """Firmware packages and rollouts of one transaction (the caller commits)."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self.platform = platform
        self.session = session
        self.clock = platform.clock
        self.repo = FirmwareRepository(session)
        self.progress = RolloutProgress(platform, session)
        self.audit = AuditLog(platform)
        self._effects: list[Effect] = []

    def pending_effects(self) -> list[Effect]:
        return list(self._effects)

    # --- packages --------------------------------------------------------------------------
    async def upload(self, actor: str, data: bytes) -> FirmwarePackage:
        """Verify a package file completely and store it; refusals are audited (denied)."""
        now = self.clock.now()
        try:
            package = Package.decode(data)
            manifest = package.verify(ca_public_key(self.platform.keys), now=int(now.timestamp()))
        except ProtocolError as exc:
            raise self._refused(exc.code, actor, len(data)) from None
        if await self.repo.product(manifest.product) is None:
            raise self._refused("fw_wrong_product", actor, len(data))
        key = sortable_version(manifest.version)
        if await self.repo.package_by_version(manifest.product, key) is not None:
            raise PackageExists(
                f"{manifest.product} {manifest.version} 已存在 / this version already exists",
                details={"product": manifest.product, "version": manifest.version},
            )
        signer = package.signed.certificate
        row = FirmwarePackage(
            id=new_id(),
            product_key=manifest.product,
            version=manifest.version,
            version_key=key,
            size=manifest.size,
            sm3=manifest.sm3.hex(),
            min_from=manifest.min_from,
            manifest=package.signed.manifest_bytes,
            signature=package.signed.signature,
            signer_certificate=package.signed.certificate_bytes,
            signer=signer.subject,
            signer_not_after=datetime.fromtimestamp(signer.not_after, UTC),
            image=package.image,
            created_at=datetime.fromtimestamp(manifest.created_ms / 1000, UTC),
            uploaded_by=actor,
            uploaded_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="firmware.package.uploaded",
            actor=actor,
            target=f"firmware-package:{row.id}",
            details={
                "package": row.id,
                "product": row.product_key,
                "version": row.version,
                "size": row.size,
                "signer": row.signer,
            },
        )
        return row

    def _refused(self, reason: str, actor: str, size: int) -> FirmwareRefused:
        async def record(svc: FirmwareService) -> None:
            await svc.audit.record(
                svc.session,
                action="firmware.package.uploaded",
                actor=actor,
                outcome="denied",
                details={"reason": reason, "size": size},
            )

        self._effects.append(record)
        return FirmwareRefused(
            f"固件包未通过校验 / firmware package refused ({reason})",
            details={"reason": reason},
        )

    async def upload_as(self, principal: Principal, data: bytes) -> FirmwarePackage:
        require_device_manager(self.platform, self.session, principal)
        if len(data) > MAX_PACKAGE_BYTES:
            raise self._refused("fw_too_large", principal.actor, len(data))
        return await self.upload(principal.actor, data)

    async def packages(
        self, principal: Principal | None, product: str | None, *, limit: int, offset: int
    ) -> Sequence[FirmwarePackage]:
        """Packages (newest version first per product); ``principal`` None: the CLI."""
        if principal is not None:
            require_device_reader(principal)
        return await self.repo.packages(product, limit=limit, offset=offset)

    async def package(self, principal: Principal | None, package_id: str) -> FirmwarePackage:
        if principal is not None:
            require_device_reader(principal)
        package = await self.repo.package(package_id) if len(package_id) <= 36 else None
        if package is None:
            raise package_not_found()
        return package

    # --- rollouts --------------------------------------------------------------------------
    async def create_rollout(
        self, actor: str, org_id: str | None, spec: RolloutSpec
    ) -> FirmwareRollout:
        """A draft rollout of ``spec.package_id`` to the chosen devices, put in random order and
        split into stages. ``org_id`` None: the platform operator (devices of every org)."""
        stages = check_stages(spec.stages)
        check_percent(spec.success_threshold_pct, "success_threshold_pct")
        check_percent(spec.failure_threshold_pct, "failure_threshold_pct")
        if not 60 <= spec.command_ttl_seconds <= MAX_TTL_SECONDS:
            raise InvalidInput(
                f"command_ttl_seconds: 60–{MAX_TTL_SECONDS}", details={"field": "ttl"}
            )
        if spec.from_version is not None:
            try:
                check_version(spec.from_version)
            except ProtocolError:
                raise InvalidInput(
                    "版本格式错误 / from_version: e.g. 1.2.0", details={"field": "from_version"}
                ) from None
        package = await self.package(None, spec.package_id)
        chosen, excluded = await self._choose_devices(package, org_id, spec)
        now = self.clock.now()
        rollout = FirmwareRollout(
            id=new_id(),
            package_id=package.id,
            org_id=org_id,
            status=RolloutStatus.DRAFT,
            stages=json.dumps(stages),
            current_stage=0,
            success_threshold_pct=spec.success_threshold_pct,
            failure_threshold_pct=spec.failure_threshold_pct,
            accepted_failures=0,
            command_ttl_seconds=spec.command_ttl_seconds,
            selector=json.dumps(
                {
                    "devices": "explicit" if spec.device_ids is not None else "all",
                    "from_version": spec.from_version,
                    "excluded": excluded,
                },
                sort_keys=True,
            ),
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        self.session.add(rollout)
        await self.session.flush()
        random.SystemRandom().shuffle(chosen)
        for position, device in enumerate(chosen):
            self.session.add(
                FirmwareRolloutDevice(
                    rollout_id=rollout.id,
                    device_id=device.id,
                    position=position,
                    stage=stage_of(position, len(chosen), stages),
                    state=DeviceState.PENDING,
                    from_version=device.firmware_version,
                    updated_at=now,
                )
            )
        await self.session.flush()
        await self.progress.audit_rollout(
            rollout,
            "firmware.rollout.created",
            actor=actor,
            details={
                "package": package.id,
                "product": package.product_key,
                "version": package.version,
                "devices": len(chosen),
                "stages": ",".join(str(s) for s in stages),
            },
        )
        return rollout

    async def _choose_devices(
        self, package: FirmwarePackage, org_id: str | None, spec: RolloutSpec
    ) -> tuple[list[Device], dict[str, int]]:
        """The eligible devices: the package's product, registered or active, in no other open
        rollout, not already at (or past) the version, and reporting ``from_version`` if given.
        Explicit ids must all be eligible (422 ``details.device``/``reason`` otherwise)."""
        if spec.device_ids is not None:
            ids = list(dict.fromkeys(spec.device_ids))
            if not 1 <= len(ids) <= MAX_EXPLICIT_DEVICES or not all(HEX_ID.match(i) for i in ids):
                raise InvalidInput(
                    f"设备列表须为 1–{MAX_EXPLICIT_DEVICES} 个设备标识 / device_ids: 1–"
                    f"{MAX_EXPLICIT_DEVICES} device ids",
                    details={"field": "device_ids"},
                )
            found = {d.id: d for d in await self.repo.devices(ids)}
            candidates = [found[i] for i in ids if i in found]
            for device_id in ids:
                device = found.get(device_id)
                if device is None or (org_id is not None and device.org_id != org_id):
                    raise self._ineligible(device_id, "not_found")
        else:
            candidates = list(
                await self.repo.candidate_devices(package.product_key, org_id, _ELIGIBLE)
            )
        busy = await self.repo.busy_devices([d.id for d in candidates])
        target = version_key(package.version)
        chosen: list[Device] = []
        excluded: dict[str, int] = {}
        for device in candidates:
            reason = self._ineligibility(device, package, spec, busy, target)
            if reason is None:
                chosen.append(device)
            elif spec.device_ids is not None:
                raise self._ineligible(device.id, reason)
            else:
                excluded[reason] = excluded.get(reason, 0) + 1
        if not chosen:
            raise NoEligibleDevices(
                "没有可升级的设备 / no device is eligible for this package",
                details={"excluded": excluded},
            )
        return chosen, excluded

    @staticmethod
    def _ineligibility(
        device: Device,
        package: FirmwarePackage,
        spec: RolloutSpec,
        busy: set[str],
        target: tuple[int, int, int, int],
    ) -> str | None:
        current = reported_version(device.firmware_version)
        if device.product_key != package.product_key:
            return "wrong_product"
        if device.status not in _ELIGIBLE:
            return "not_commandable"
        if device.id in busy:
            return "busy"
        if current is not None and version_key(current) >= target:
            return "up_to_date"
        if spec.from_version is not None and (
            current is None or version_key(current) != version_key(spec.from_version)
        ):
            return "other_version"
        return None

    @staticmethod
    def _ineligible(device_id: str, reason: str) -> InvalidInput:
        return InvalidInput(
            f"设备不可升级 / device {device_id} is not eligible ({reason})",
            details={"field": "device_ids", "device": device_id, "reason": reason},
        )

    async def act(
        self, actor: str, org_id: str | None, rollout_id: str, action: str
    ) -> FirmwareRollout:
        """An operator's start, pause, resume or cancel (audited)."""
        if action not in ACTIONS:
            raise InvalidInput(f"unknown action {action!r}", details={"known": list(ACTIONS)})
        rollout = await self._visible(org_id, rollout_id, for_update=True)
        sources, target = ACTIONS[action]
        if rollout.status not in sources:
            raise IllegalRolloutTransition(
                f"{rollout.status} 状态不能{action} / a {rollout.status} rollout cannot {action}",
                details={"status": rollout.status, "action": action},
            )
        now = self.clock.now()
        details: Details = {"from": rollout.status}
        if action == "pause":
            await self.progress.pause(rollout, actor=actor, reason=PAUSED_BY_OPERATOR)
            return rollout
        rollout.status = target
        rollout.updated_at = now
        if action == "cancel":
            details["withdrawn"] = await self.progress.withdraw(
                rollout, to=DeviceState.CANCELLED, actor=actor
            )
            rollout.finished_at = now
        elif action == "start":
            rollout.started_at = now
        elif action == "resume":
            # Failures so far are accepted: they no longer count against the threshold.
            _, _, failed, _ = await self.progress.started_counts(rollout)
            rollout.accepted_failures = failed
            rollout.paused_reason = None
            details["accepted_failures"] = failed
        await self.session.flush()
        await self.progress.audit_rollout(
            rollout, f"firmware.rollout.{_PAST[action]}", actor=actor, details=details
        )
        if target == RolloutStatus.RUNNING:
            if action == "resume":
                await self.progress.dispatch_pending(rollout)
            await self.progress.evaluate(rollout)
        return rollout

    async def summary(self, org_id: str | None, rollout_id: str) -> RolloutSummary:
        """A rollout with its counts (``org_id`` None: any rollout)."""
        rollout = await self._visible(org_id, rollout_id)
        return await self.summarise(rollout)

    async def summarise(self, rollout: FirmwareRollout) -> RolloutSummary:
        package = await self.repo.package(rollout.package_id)
        if package is None:  # pragma: no cover - a foreign key keeps it
            raise package_not_found()
        states: dict[str, int] = {}
        per_stage: list[dict[str, int]] = [{} for _ in json.loads(rollout.stages)]
        for stage, state, n in await self.repo.state_counts(rollout.id):
            states[state] = states.get(state, 0) + n
            per_stage[stage - 1][state] = per_stage[stage - 1].get(state, 0) + n
        return RolloutSummary(rollout, package, states, per_stage)

    async def rollouts(
        self, org_id: str | None, status: str | None, *, limit: int, offset: int
    ) -> Sequence[FirmwareRollout]:
        return await self.repo.rollouts(org_id, status, limit=limit, offset=offset)

    async def rollout_devices(
        self,
        org_id: str | None,
        rollout_id: str,
        state: str | None,
        *,
        limit: int,
        offset: int,
    ) -> Sequence[FirmwareRolloutDevice]:
        rollout = await self._visible(org_id, rollout_id)
        states = [state] if state is not None else None
        return await self.repo.rows(rollout.id, states=states, limit=limit, offset=offset)

    async def _visible(
        self, org_id: str | None, rollout_id: str, *, for_update: bool = False
    ) -> FirmwareRollout:
        rollout = (
            await self.repo.rollout(rollout_id, for_update=for_update)
            if len(rollout_id) <= 36
            else None
        )
        if rollout is None or (org_id is not None and rollout.org_id != org_id):
            raise rollout_not_found()
        return rollout

    # --- for signed-in principals (HTTP) ---------------------------------------------------
    @staticmethod
    def org_of(principal: Principal) -> str:
        """Over HTTP a rollout belongs to the caller's organisation (operators use the CLI)."""
        if principal.org_id is None:
            raise Forbidden(
                "平台账号请使用命令行 / platform-level accounts manage rollouts with the CLI"
            )
        return principal.org_id

    async def create_rollout_as(self, principal: Principal, spec: RolloutSpec) -> FirmwareRollout:
        require_device_manager(self.platform, self.session, principal)
        return await self.create_rollout(principal.actor, self.org_of(principal), spec)

    async def act_as(self, principal: Principal, rollout_id: str, action: str) -> FirmwareRollout:
        require_device_manager(self.platform, self.session, principal)
        return await self.act(principal.actor, self.org_of(principal), rollout_id, action)

    def readable_org(self, principal: Principal) -> str:
        """The organisation whose rollouts ``principal`` may read (``devices.read``)."""
        require_device_reader(principal)
        return self.org_of(principal)


_PAST = {"start": "started", "resume": "resumed", "cancel": "cancelled"}


async def run_firmware_boundary(
    platform: Platform, work: Callable[[FirmwareService], Awaitable[T]]
) -> T:
    """Run ``work`` in one transaction; a refused upload's audit entry survives the rollback."""
    return await run_with_failure_effects(
        platform.db,
        lambda session: FirmwareService(platform, session),
        work,
        lambda service: service.pending_effects(),
        lambda session: FirmwareService(platform, session),
    )
