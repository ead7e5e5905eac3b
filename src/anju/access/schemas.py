"""HTTP bodies of /api/v1/access (docs/access.md, "HTTP API")."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from anju.access.freeze import FreezeView
from anju.access.grants import DoorSelector, GrantSpec
from anju.access.models import (
    AccessAnomaly,
    AccessCredential,
    AccessDelivery,
    AccessGrant,
    AccessLockOperation,
)
from anju.errors import InvalidInput
from anju.protocol.access import Schedule
from anju.protocol.errors import ProtocolError


class ScheduleIn(BaseModel):
    weekdays: int = Field(ge=1, le=127, description="bit 0 = Monday … bit 6 = Sunday")
    start_minute: int = Field(ge=0, le=1439)
    end_minute: int = Field(ge=0, le=1440)
    utc_offset_minutes: int = Field(default=480, ge=-720, le=840)

    def schedule(self) -> Schedule:
        try:
            return Schedule(
                self.weekdays, self.start_minute, self.end_minute, self.utc_offset_minutes
            )
        except ProtocolError:
            raise InvalidInput(
                "排班时段无效 / invalid schedule", details={"field": "schedule"}
            ) from None


class DoorsIn(BaseModel):
    device_ids: list[str] | None = Field(default=None, max_length=500)
    place_kind: str | None = Field(default=None, max_length=32)
    place_ref: str | None = Field(default=None, max_length=100)


class GrantIn(BaseModel):
    subject_id: str = Field(min_length=1, max_length=64)
    person_type: str = Field(max_length=16)
    doors: DoorsIn
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    schedule: ScheduleIn | None = None
    uses: int | None = Field(default=None, ge=1, le=1_000_000)

    def spec(self) -> GrantSpec:
        for value in (self.valid_from, self.valid_until):
            if value is not None and value.tzinfo is None:
                raise InvalidInput(
                    "时间须带时区偏移 / times need an explicit UTC offset (e.g. +08:00)",
                    details={"field": "valid_until"},
                )
        ids = None if self.doors.device_ids is None else tuple(self.doors.device_ids)
        return GrantSpec(
            subject_id=self.subject_id,
            person_type=self.person_type,
            doors=DoorSelector(ids, self.doors.place_kind, self.doors.place_ref),
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            schedule=None if self.schedule is None else self.schedule.schedule(),
            uses=self.uses,
        )


class GrantOut(BaseModel):
    id: str
    subject_id: str
    person_type: str
    device_ids: list[str]
    selector: dict[str, Any]
    valid_from: datetime
    valid_until: datetime | None
    schedule: dict[str, int] | None
    uses: int | None
    status: str
    end_reason: str | None
    created_by: str
    created_at: datetime
    anomalies: list[str] = Field(default_factory=list)


def grant_out(grant: AccessGrant, anomalies: list[str] | None = None) -> GrantOut:
    return GrantOut(
        id=grant.id,
        subject_id=grant.subject_id,
        person_type=grant.person_type,
        device_ids=json.loads(grant.device_ids),
        selector=json.loads(grant.selector),
        valid_from=grant.valid_from,
        valid_until=grant.valid_until,
        schedule=None if grant.schedule is None else json.loads(grant.schedule),
        uses=grant.uses,
        status=grant.status,
        end_reason=grant.end_reason,
        created_by=grant.created_by,
        created_at=grant.created_at,
        anomalies=anomalies or [],
    )


class CredentialIn(BaseModel):
    kind: Literal["passcode", "card", "ekey"]
    passcode: str | None = Field(default=None, max_length=12, description="chosen digits")
    card_uid: str | None = Field(default=None, max_length=20)
    holder_key: str | None = Field(default=None, max_length=100, description="base64 SM2 x‖y")


class ReplaceIn(BaseModel):
    passcode: str | None = Field(default=None, max_length=12)
    card_uid: str | None = Field(default=None, max_length=20)
    holder_key: str | None = Field(default=None, max_length=100)


class CredentialOut(BaseModel):
    id: str
    grant_id: str
    subject_id: str
    kind: str
    status: str
    end_reason: str | None
    card_uid: str | None
    replaces: str | None
    created_at: datetime
    ended_at: datetime | None


def credential_out(credential: AccessCredential) -> CredentialOut:
    uid = credential.card_uid
    return CredentialOut(
        id=credential.id,
        grant_id=credential.grant_id,
        subject_id=credential.subject_id,
        kind=credential.kind,
        status=credential.status,
        end_reason=credential.end_reason,
        card_uid=None if uid is None else uid[:2] + "*" * (len(uid) - 4) + uid[-2:],
        replaces=credential.replaces,
        created_at=credential.created_at,
        ended_at=credential.ended_at,
    )


class IssuedOut(BaseModel):
    """A new credential and what is shown ONCE: passcode digits, card key, eKey tokens."""

    credential: CredentialOut
    passcode: str | None = None
    card_uid: str | None = None
    card_key: str | None = None
    tokens: dict[str, str] | None = None
    certificate: str | None = None


class DeliveryOut(BaseModel):
    device_id: str
    state: str
    code: str | None
    command_id: str | None
    queued_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None


def delivery_out(row: AccessDelivery) -> DeliveryOut:
    return DeliveryOut(
        device_id=row.device_id,
        state=row.state,
        code=row.code,
        command_id=row.command_id,
        queued_at=row.queued_at,
        updated_at=row.updated_at,
        confirmed_at=row.confirmed_at,
    )


class FreezeIn(BaseModel):
    subject_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(max_length=16)
    note: str | None = Field(default=None, max_length=200, description="never personal data")


class LockOperationOut(BaseModel):
    device_id: str
    op: str
    state: str
    code: str | None
    command_id: str
    confirmed_at: datetime | None


def lock_operation_out(row: AccessLockOperation) -> LockOperationOut:
    return LockOperationOut(
        device_id=row.device_id,
        op=row.op,
        state=row.state,
        code=row.code,
        command_id=row.command_id,
        confirmed_at=row.confirmed_at,
    )


class FreezeOut(BaseModel):
    id: str
    subject_id: str
    reason: str
    note: str | None
    status: str
    frozen_by: str
    frozen_at: datetime
    lifted_at: datetime | None
    locks: list[LockOperationOut]


def freeze_out(view: FreezeView) -> FreezeOut:
    row = view.freeze
    return FreezeOut(
        id=row.id,
        subject_id=row.subject_id,
        reason=row.reason,
        note=row.note,
        status=row.status,
        frozen_by=row.frozen_by,
        frozen_at=row.frozen_at,
        lifted_at=row.lifted_at,
        locks=[lock_operation_out(op) for op in view.locks],
    )


class AnomalyOut(BaseModel):
    id: str
    kind: str
    actor: str
    grant_id: str | None
    detail: dict[str, Any]
    at: datetime


def anomaly_out(row: AccessAnomaly) -> AnomalyOut:
    return AnomalyOut(
        id=row.id,
        kind=row.kind,
        actor=row.actor,
        grant_id=row.grant_id,
        detail=json.loads(row.detail),
        at=row.at,
    )
