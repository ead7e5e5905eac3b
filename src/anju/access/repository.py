"""Queries of the access tables (SQLAlchemy 2 ``select``); no rules live here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.models import (
    AccessAnomaly,
    AccessCredential,
    AccessDelivery,
    AccessFreeze,
    AccessGrant,
    AccessLockOperation,
    AccessLockState,
)
from anju.devices.command_models import DeviceCommand
from anju.devices.models import Device


class AccessRepository:
    """Reads and writes of the access tables."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: object) -> None:
        self.session.add(row)

    # --- doors -----------------------------------------------------------------------------
    async def org_locks(
        self,
        org_id: str,
        *,
        device_ids: Sequence[str] | None = None,
        place_kind: str | None = None,
        place_ref: str | None = None,
    ) -> Sequence[Device]:
        """Lock devices of ``org_id`` chosen explicitly or by place kind / reference."""
        query = select(Device).where(Device.org_id == org_id, Device.device_type == "lock")
        if device_ids is not None:
            query = query.where(Device.id.in_(list(device_ids)))
        if place_kind is not None:
            query = query.where(Device.place_kind == place_kind)
        if place_ref is not None:
            query = query.where(Device.place_ref == place_ref)
        return (await self.session.execute(query.order_by(Device.id))).scalars().all()

    async def devices(self, device_ids: Sequence[str]) -> dict[str, Device]:
        query = select(Device).where(Device.id.in_(list(device_ids)))
        return {d.id: d for d in (await self.session.execute(query)).scalars()}

    # --- grants ----------------------------------------------------------------------------
    async def grant(self, grant_id: str, *, for_update: bool = False) -> AccessGrant | None:
        query = select(AccessGrant).where(AccessGrant.id == grant_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def grants(
        self,
        org_id: str,
        *,
        subject_id: str | None,
        status: str | None,
        limit: int,
        offset: int,
    ) -> Sequence[AccessGrant]:
        query = select(AccessGrant).where(AccessGrant.org_id == org_id)
        if subject_id is not None:
            query = query.where(AccessGrant.subject_id == subject_id)
        if status is not None:
            query = query.where(AccessGrant.status == status)
        query = query.order_by(AccessGrant.created_at.desc(), AccessGrant.id)
        return (await self.session.execute(query.limit(limit).offset(offset))).scalars().all()

    async def due_grants(self, now: datetime, status: str, limit: int) -> Sequence[AccessGrant]:
        """Grants in ``status`` whose end has passed (locked; others' rows skipped)."""
        query = (
            select(AccessGrant)
            .where(AccessGrant.status == status, AccessGrant.valid_until <= now)
            .order_by(AccessGrant.valid_until)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(query)).scalars().all()

    async def grants_by_actor_since(self, actor: str, org_id: str, since: datetime) -> int:
        query = select(func.count()).where(
            AccessGrant.created_by == actor,
            AccessGrant.org_id == org_id,
            AccessGrant.created_at >= since,
        )
        return int((await self.session.execute(query)).scalar_one())

    # --- credentials -----------------------------------------------------------------------
    async def credential(
        self, credential_id: str, *, for_update: bool = False
    ) -> AccessCredential | None:
        query = select(AccessCredential).where(AccessCredential.id == credential_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def credentials_of_grant(
        self, grant_id: str, statuses: Sequence[str] | None = None
    ) -> Sequence[AccessCredential]:
        query = select(AccessCredential).where(AccessCredential.grant_id == grant_id)
        if statuses is not None:
            query = query.where(AccessCredential.status.in_(list(statuses)))
        return (
            (await self.session.execute(query.order_by(AccessCredential.created_at)))
            .scalars()
            .all()
        )

    async def credentials_of_subject(
        self, org_id: str, subject_id: str, statuses: Sequence[str]
    ) -> Sequence[AccessCredential]:
        query = select(AccessCredential).where(
            AccessCredential.org_id == org_id,
            AccessCredential.subject_id == subject_id,
            AccessCredential.status.in_(list(statuses)),
        )
        return (await self.session.execute(query.order_by(AccessCredential.id))).scalars().all()

    async def card_in_use(self, org_id: str, uid: str, statuses: Sequence[str]) -> bool:
        query = select(AccessCredential.id).where(
            AccessCredential.org_id == org_id,
            AccessCredential.card_uid == uid,
            AccessCredential.status.in_(list(statuses)),
        )
        return (await self.session.execute(query.limit(1))).first() is not None

    # --- deliveries ------------------------------------------------------------------------
    async def deliveries(
        self, credential_id: str, *, for_update: bool = False
    ) -> Sequence[AccessDelivery]:
        query = select(AccessDelivery).where(AccessDelivery.credential_id == credential_id)
        if for_update:
            query = query.with_for_update()
        return (
            (await self.session.execute(query.order_by(AccessDelivery.device_id))).scalars().all()
        )

    async def deliveries_of_subject_on(
        self, device_id: str, subject_id: str
    ) -> Sequence[AccessDelivery]:
        query = (
            select(AccessDelivery)
            .join(AccessCredential, AccessCredential.id == AccessDelivery.credential_id)
            .where(AccessDelivery.device_id == device_id, AccessCredential.subject_id == subject_id)
            .with_for_update(of=AccessDelivery)
        )
        return (await self.session.execute(query)).scalars().all()

    async def delivery_by_command(
        self, device_id: str, command_id: str
    ) -> Sequence[AccessDelivery]:
        query = (
            select(AccessDelivery)
            .where(AccessDelivery.device_id == device_id, AccessDelivery.command_id == command_id)
            .with_for_update()
        )
        return (await self.session.execute(query)).scalars().all()

    async def digest_in_use(self, device_id: str, digest: str, states: Sequence[str]) -> bool:
        query = select(AccessDelivery.credential_id).where(
            AccessDelivery.device_id == device_id,
            AccessDelivery.passcode_digest == digest,
            AccessDelivery.state.in_(list(states)),
        )
        return (await self.session.execute(query.limit(1))).first() is not None

    async def deliveries_with_commands(
        self, states: Sequence[str], *, device_id: str | None, limit: int
    ) -> Sequence[tuple[AccessDelivery, DeviceCommand | None]]:
        """Rows in ``states`` with the command that carries them (rows locked)."""
        query = (
            select(AccessDelivery, DeviceCommand)
            .outerjoin(DeviceCommand, DeviceCommand.id == AccessDelivery.command_id)
            .where(AccessDelivery.state.in_(list(states)))
        )
        if device_id is not None:
            query = query.where(AccessDelivery.device_id == device_id)
        query = query.order_by(AccessDelivery.updated_at).limit(limit)
        query = query.with_for_update(of=AccessDelivery, skip_locked=True)
        return [(d, c) for d, c in await self.session.execute(query)]

    async def commands(self, command_ids: Sequence[str]) -> dict[str, DeviceCommand]:
        query = select(DeviceCommand).where(DeviceCommand.id.in_(list(command_ids)))
        return {c.id: c for c in (await self.session.execute(query)).scalars()}

    # --- lock-wide operations and state ----------------------------------------------------
    async def lock_operation(self, command_id: str) -> AccessLockOperation | None:
        query = (
            select(AccessLockOperation)
            .where(AccessLockOperation.command_id == command_id)
            .with_for_update()
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def lock_operations_of_freeze(self, freeze_id: str) -> Sequence[AccessLockOperation]:
        query = select(AccessLockOperation).where(AccessLockOperation.freeze_id == freeze_id)
        return (
            (await self.session.execute(query.order_by(AccessLockOperation.created_at)))
            .scalars()
            .all()
        )

    async def lock_state(self, device_id: str) -> AccessLockState | None:
        query = select(AccessLockState).where(AccessLockState.device_id == device_id)
        return (await self.session.execute(query.with_for_update())).scalar_one_or_none()

    # --- freezes ---------------------------------------------------------------------------
    async def active_freeze(
        self, org_id: str, subject_id: str, *, for_update: bool = False
    ) -> AccessFreeze | None:
        query = select(AccessFreeze).where(
            AccessFreeze.org_id == org_id,
            AccessFreeze.subject_id == subject_id,
            AccessFreeze.status == "frozen",
        )
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query.limit(1))).scalar_one_or_none()

    async def freeze(self, freeze_id: str) -> AccessFreeze | None:
        query = select(AccessFreeze).where(AccessFreeze.id == freeze_id).with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def freezes(
        self, org_id: str, *, subject_id: str | None, status: str | None, limit: int
    ) -> Sequence[AccessFreeze]:
        query = select(AccessFreeze).where(AccessFreeze.org_id == org_id)
        if subject_id is not None:
            query = query.where(AccessFreeze.subject_id == subject_id)
        if status is not None:
            query = query.where(AccessFreeze.status == status)
        query = query.order_by(AccessFreeze.frozen_at.desc()).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    # --- anomalies -------------------------------------------------------------------------
    async def anomalies(
        self, org_id: str, *, since: datetime | None, kind: str | None, limit: int
    ) -> Sequence[AccessAnomaly]:
        query = select(AccessAnomaly).where(AccessAnomaly.org_id == org_id)
        if since is not None:
            query = query.where(AccessAnomaly.at >= since)
        if kind is not None:
            query = query.where(AccessAnomaly.kind == kind)
        query = query.order_by(AccessAnomaly.at.desc(), AccessAnomaly.id).limit(limit)
        return (await self.session.execute(query)).scalars().all()
