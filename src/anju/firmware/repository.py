"""Queries of firmware packages and rollouts (SQLAlchemy 2 ``select``); no rules live here."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from anju.devices.command_models import DeviceCommand
from anju.devices.models import Device, DeviceProduct
from anju.firmware.models import FirmwarePackage, FirmwareRollout, FirmwareRolloutDevice
from anju.firmware.rules import FINISHED, OPEN_ROLLOUTS, DeviceState, RolloutStatus

RolloutRow = FirmwareRolloutDevice


class FirmwareRepository:
    """Reads and writes of the firmware tables."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- packages --------------------------------------------------------------------------
    async def product(self, product_key: str) -> DeviceProduct | None:
        return await self.session.get(DeviceProduct, product_key)

    async def package(self, package_id: str) -> FirmwarePackage | None:
        return await self.session.get(FirmwarePackage, package_id)

    async def package_by_version(
        self, product_key: str, version_key: str
    ) -> FirmwarePackage | None:
        query = select(FirmwarePackage).where(
            FirmwarePackage.product_key == product_key,
            FirmwarePackage.version_key == version_key,
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def packages(
        self, product_key: str | None, *, limit: int, offset: int
    ) -> Sequence[FirmwarePackage]:
        """Packages, newest version first within a product."""
        query = select(FirmwarePackage)
        if product_key is not None:
            query = query.where(FirmwarePackage.product_key == product_key)
        query = query.order_by(
            FirmwarePackage.product_key, FirmwarePackage.version_key.desc()
        ).limit(limit)
        return (await self.session.execute(query.offset(offset))).scalars().all()

    async def image(self, package_id: str) -> bytes | None:
        query = (
            select(FirmwarePackage)
            .where(FirmwarePackage.id == package_id)
            .options(undefer(FirmwarePackage.image))
        )
        package = (await self.session.execute(query)).scalar_one_or_none()
        return None if package is None else package.image

    # --- rollouts --------------------------------------------------------------------------
    async def rollout(
        self, rollout_id: str, *, for_update: bool = False, skip_locked: bool = False
    ) -> FirmwareRollout | None:
        """A rollout; ``for_update`` locks it (``skip_locked``: None if another holds it)."""
        query = select(FirmwareRollout).where(FirmwareRollout.id == rollout_id)
        if for_update:
            query = query.with_for_update(skip_locked=skip_locked)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def rollouts(
        self, org_id: str | None, status: str | None, *, limit: int, offset: int
    ) -> Sequence[FirmwareRollout]:
        """Rollouts of ``org_id`` (None: every rollout), newest first."""
        query = select(FirmwareRollout)
        if org_id is not None:
            query = query.where(FirmwareRollout.org_id == org_id)
        if status is not None:
            query = query.where(FirmwareRollout.status == status)
        query = query.order_by(FirmwareRollout.created_at.desc(), FirmwareRollout.id)
        return (await self.session.execute(query.limit(limit).offset(offset))).scalars().all()

    async def ticking_rollout_ids(self, limit: int) -> list[str]:
        """Rollouts the periodic tick looks at: running and paused ones (devices of a paused
        rollout may still finish, and their commands may still fail)."""
        query = (
            select(FirmwareRollout.id)
            .where(FirmwareRollout.status.in_([RolloutStatus.RUNNING, RolloutStatus.PAUSED]))
            .order_by(FirmwareRollout.updated_at)
            .limit(limit)
        )
        return list((await self.session.execute(query)).scalars())

    async def candidate_devices(
        self, product_key: str, org_id: str | None, statuses: Sequence[str]
    ) -> Sequence[Device]:
        """Devices of a product (of an organisation, or every registered one) in ``statuses``."""
        query = select(Device).where(
            Device.product_key == product_key, Device.status.in_(list(statuses))
        )
        query = query.where(
            Device.org_id == org_id if org_id is not None else Device.org_id.is_not(None)
        )
        return (await self.session.execute(query.order_by(Device.id))).scalars().all()

    async def devices(self, device_ids: Sequence[str]) -> Sequence[Device]:
        query = select(Device).where(Device.id.in_(list(device_ids)))
        return (await self.session.execute(query)).scalars().all()

    async def busy_devices(self, device_ids: Sequence[str]) -> set[str]:
        """Those of ``device_ids`` not finished in an open rollout (one rollout at a time)."""
        found: set[str] = set()
        ids = list(device_ids)
        for start in range(0, len(ids), 500):
            query = (
                select(FirmwareRolloutDevice.device_id)
                .join(FirmwareRollout, FirmwareRollout.id == FirmwareRolloutDevice.rollout_id)
                .where(
                    FirmwareRolloutDevice.device_id.in_(ids[start : start + 500]),
                    FirmwareRolloutDevice.state.not_in(list(FINISHED)),
                    FirmwareRollout.status.in_(list(OPEN_ROLLOUTS)),
                )
            )
            found.update((await self.session.execute(query)).scalars())
        return found

    async def rows(
        self,
        rollout_id: str,
        *,
        states: Sequence[str] | None = None,
        max_stage: int | None = None,
        limit: int | None = None,
        offset: int = 0,
        for_update: bool = False,
    ) -> Sequence[RolloutRow]:
        """Devices of a rollout in position order, optionally filtered."""
        query = select(FirmwareRolloutDevice).where(FirmwareRolloutDevice.rollout_id == rollout_id)
        if states is not None:
            query = query.where(FirmwareRolloutDevice.state.in_(list(states)))
        if max_stage is not None:
            query = query.where(FirmwareRolloutDevice.stage <= max_stage)
        query = query.order_by(FirmwareRolloutDevice.position).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalars().all()

    async def state_counts(self, rollout_id: str) -> list[tuple[int, str, int]]:
        """(stage, state, how many) of a rollout's devices."""
        query = (
            select(
                FirmwareRolloutDevice.stage,
                FirmwareRolloutDevice.state,
                func.count(),
            )
            .where(FirmwareRolloutDevice.rollout_id == rollout_id)
            .group_by(FirmwareRolloutDevice.stage, FirmwareRolloutDevice.state)
        )
        return [(int(a), str(b), int(c)) for a, b, c in await self.session.execute(query)]

    async def open_row_for_report(
        self, device_id: str, package_id: str
    ) -> tuple[RolloutRow, FirmwareRollout] | None:
        """The device's unfinished row in the newest rollout of ``package_id``."""
        query = (
            select(FirmwareRolloutDevice, FirmwareRollout)
            .join(FirmwareRollout, FirmwareRollout.id == FirmwareRolloutDevice.rollout_id)
            .where(
                FirmwareRolloutDevice.device_id == device_id,
                FirmwareRollout.package_id == package_id,
                FirmwareRolloutDevice.state.not_in(list(FINISHED)),
            )
            .order_by(FirmwareRollout.created_at.desc())
            .limit(1)
        )
        found = (await self.session.execute(query)).first()
        return None if found is None else (found[0], found[1])

    async def row(self, rollout_id: str, device_id: str) -> RolloutRow | None:
        query = (
            select(FirmwareRolloutDevice)
            .where(
                FirmwareRolloutDevice.rollout_id == rollout_id,
                FirmwareRolloutDevice.device_id == device_id,
            )
            .with_for_update()
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def offered(
        self,
        device_id: str,
        package_id: str,
        rollout_statuses: Sequence[str],
        states: Sequence[str],
    ) -> bool:
        """Whether ``device_id`` has a row in those states in a rollout of ``package_id``."""
        query = (
            select(FirmwareRolloutDevice.device_id)
            .join(FirmwareRollout, FirmwareRollout.id == FirmwareRolloutDevice.rollout_id)
            .where(
                FirmwareRolloutDevice.device_id == device_id,
                FirmwareRollout.package_id == package_id,
                FirmwareRollout.status.in_(list(rollout_statuses)),
                FirmwareRolloutDevice.state.in_(list(states)),
            )
            .limit(1)
        )
        return (await self.session.execute(query)).first() is not None

    async def sent_rows_with_commands(
        self, rollout_id: str
    ) -> Sequence[tuple[RolloutRow, DeviceCommand]]:
        """Rows still at ``sent`` with the command that carried their offer (locked)."""
        query = (
            select(FirmwareRolloutDevice, DeviceCommand)
            .join(DeviceCommand, DeviceCommand.id == FirmwareRolloutDevice.command_id)
            .where(
                FirmwareRolloutDevice.rollout_id == rollout_id,
                FirmwareRolloutDevice.state == DeviceState.SENT,
            )
            .order_by(FirmwareRolloutDevice.position)
            .with_for_update(of=FirmwareRolloutDevice)
        )
        return [(r, c) for r, c in await self.session.execute(query)]
