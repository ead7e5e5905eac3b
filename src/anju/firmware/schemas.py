"""Request and response bodies of the firmware API (docs/firmware.md)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from anju.devices.commands.rules import MAX_TTL_SECONDS
from anju.firmware.models import FirmwarePackage, FirmwareRollout, FirmwareRolloutDevice
from anju.firmware.rules import (
    DEFAULT_COMMAND_TTL_SECONDS,
    DEFAULT_FAILURE_PCT,
    DEFAULT_STAGES,
    DEFAULT_SUCCESS_PCT,
    MAX_EXPLICIT_DEVICES,
    MAX_STAGES,
)
from anju.firmware.service import RolloutSpec, RolloutSummary

Percent = Annotated[int, Field(ge=0, le=100)]


class PackageOut(BaseModel):
    id: str
    product_key: str
    version: str
    size: int
    sm3: str
    min_from: str | None
    signer: str
    signer_not_after: datetime
    created_at: datetime
    uploaded_by: str
    uploaded_at: datetime


def package_out(package: FirmwarePackage) -> PackageOut:
    return PackageOut(
        id=package.id,
        product_key=package.product_key,
        version=package.version,
        size=package.size,
        sm3=package.sm3,
        min_from=package.min_from,
        signer=package.signer,
        signer_not_after=package.signer_not_after,
        created_at=package.created_at,
        uploaded_by=package.uploaded_by,
        uploaded_at=package.uploaded_at,
    )


class RolloutIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    package_id: Annotated[str, StringConstraints(min_length=1, max_length=36)]
    device_ids: (
        Annotated[list[str], Field(min_length=1, max_length=MAX_EXPLICIT_DEVICES)] | None
    ) = None
    from_version: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    stages: Annotated[list[Percent], Field(min_length=1, max_length=MAX_STAGES)] = Field(
        default_factory=lambda: list(DEFAULT_STAGES)
    )
    success_threshold_pct: Percent = DEFAULT_SUCCESS_PCT
    failure_threshold_pct: Percent = DEFAULT_FAILURE_PCT
    command_ttl_seconds: Annotated[int, Field(ge=60, le=MAX_TTL_SECONDS)] = (
        DEFAULT_COMMAND_TTL_SECONDS
    )

    def spec(self) -> RolloutSpec:
        return RolloutSpec(
            package_id=self.package_id,
            device_ids=tuple(self.device_ids) if self.device_ids is not None else None,
            from_version=self.from_version,
            stages=tuple(self.stages),
            success_threshold_pct=self.success_threshold_pct,
            failure_threshold_pct=self.failure_threshold_pct,
            command_ttl_seconds=self.command_ttl_seconds,
        )


class RolloutOut(BaseModel):
    id: str
    package_id: str
    product_key: str
    version: str
    status: str
    paused_reason: str | None
    stages: list[int]
    current_stage: int
    success_threshold_pct: int
    failure_threshold_pct: int
    accepted_failures: int
    command_ttl_seconds: int
    selector: dict[str, object]
    devices: int
    states: dict[str, int]
    stage_states: list[dict[str, int]]
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def rollout_out(summary: RolloutSummary) -> RolloutOut:
    rollout: FirmwareRollout = summary.rollout
    return RolloutOut(
        id=rollout.id,
        package_id=rollout.package_id,
        product_key=summary.package.product_key,
        version=summary.package.version,
        status=rollout.status,
        paused_reason=rollout.paused_reason,
        stages=json.loads(rollout.stages),
        current_stage=rollout.current_stage,
        success_threshold_pct=rollout.success_threshold_pct,
        failure_threshold_pct=rollout.failure_threshold_pct,
        accepted_failures=rollout.accepted_failures,
        command_ttl_seconds=rollout.command_ttl_seconds,
        selector=json.loads(rollout.selector),
        devices=sum(summary.states.values()),
        states=summary.states,
        stage_states=summary.stages,
        created_by=rollout.created_by,
        created_at=rollout.created_at,
        started_at=rollout.started_at,
        finished_at=rollout.finished_at,
    )


class RolloutDeviceOut(BaseModel):
    device_id: str
    stage: int
    state: str
    code: str | None
    command_id: str | None
    from_version: str | None
    sent_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None


def rollout_device_out(row: FirmwareRolloutDevice) -> RolloutDeviceOut:
    return RolloutDeviceOut(
        device_id=row.device_id,
        stage=row.stage,
        state=row.state,
        code=row.code,
        command_id=row.command_id,
        from_version=row.from_version,
        sent_at=row.sent_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
    )
