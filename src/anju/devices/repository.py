"""Queries of the device registry (SQLAlchemy 2 ``select``); no rules live here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.devices.models import Device, DeviceOperation, DeviceProduct, RegistrationNonce


@dataclass(frozen=True)
class DeviceFilter:
    """Optional filters of a device listing (None means "any")."""

    device_type: str | None = None
    status: str | None = None
    online: bool | None = None
    place_kind: str | None = None
    place_ref: str | None = None


class DevicesRepository:
    """Reads and writes of devices, products, operation records and registration nonces."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- products --------------------------------------------------------------------------
    async def product(self, product_key: str, *, for_update: bool = False) -> DeviceProduct | None:
        query = select(DeviceProduct).where(DeviceProduct.product_key == product_key)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def products(self) -> Sequence[DeviceProduct]:
        query = select(DeviceProduct).order_by(DeviceProduct.product_key)
        return (await self.session.execute(query)).scalars().all()

    # --- devices ---------------------------------------------------------------------------
    async def device(self, device_id: str, *, for_update: bool = False) -> Device | None:
        query = select(Device).where(Device.id == device_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def device_by_se_id(self, se_id: str) -> Device | None:
        query = select(Device).where(Device.se_id == se_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def device_at_place(self, org_id: str, place_kind: str, place_ref: str) -> Device | None:
        query = select(Device).where(
            Device.org_id == org_id, Device.place_kind == place_kind, Device.place_ref == place_ref
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def devices_of_org(
        self, org_id: str, flt: DeviceFilter, *, limit: int, offset: int
    ) -> Sequence[Device]:
        query = select(Device).where(Device.org_id == org_id)
        if flt.device_type is not None:
            query = query.where(Device.device_type == flt.device_type)
        if flt.status is not None:
            query = query.where(Device.status == flt.status)
        if flt.online is not None:
            query = query.where(Device.online == flt.online)
        if flt.place_kind is not None:
            query = query.where(Device.place_kind == flt.place_kind)
        if flt.place_ref is not None:
            query = query.where(Device.place_ref == flt.place_ref)
        query = query.order_by(Device.created_at, Device.id).limit(limit).offset(offset)
        return (await self.session.execute(query)).scalars().all()

    async def all_devices(self, org_id: str | None = None) -> Sequence[Device]:
        """Every device (CLI listing), optionally of one organisation."""
        query = select(Device).order_by(Device.created_at, Device.id)
        if org_id is not None:
            query = query.where(Device.org_id == org_id)
        return (await self.session.execute(query)).scalars().all()

    # --- operation records -----------------------------------------------------------------
    async def operations(
        self, device_id: str, org_id: str | None, *, limit: int, offset: int
    ) -> Sequence[DeviceOperation]:
        """Records of a device made while it belonged to ``org_id`` (newest first)."""
        query = select(DeviceOperation).where(DeviceOperation.device_id == device_id)
        if org_id is not None:
            query = query.where(DeviceOperation.org_id == org_id)
        query = query.order_by(DeviceOperation.id.desc())
        return (await self.session.execute(query.limit(limit).offset(offset))).scalars().all()

    # --- registration nonces ---------------------------------------------------------------
    async def nonce_seen(self, product_key: str, nonce: str) -> bool:
        query = select(RegistrationNonce.nonce).where(
            RegistrationNonce.product_key == product_key, RegistrationNonce.nonce == nonce
        )
        return (await self.session.execute(query)).first() is not None

    async def forget_nonces_before(self, cutoff: datetime) -> None:
        await self.session.execute(
            delete(RegistrationNonce).where(RegistrationNonce.seen_at < cutoff)
        )
