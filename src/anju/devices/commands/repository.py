"""Queries of device commands (SQLAlchemy 2 ``select``); no rules live here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from anju.devices.command_models import DeviceCommand
from anju.devices.commands.rules import PENDING, CommandStatus
from anju.devices.models import Device

# Built once: a statement made anew per call spends more CPU on its construction and cache key
# than on the SQL (the hot paths: enqueue, delivery, acks).
_TABLE = cast(Table, DeviceCommand.__table__)
_INSERT_NEXT = (
    insert(_TABLE)
    .values(
        seq=select(func.coalesce(func.max(_TABLE.c.seq), 0) + 1)
        .where(_TABLE.c.device_id == bindparam("of_device"))
        .scalar_subquery()
    )
    .returning(*_TABLE.c)
)
_LOCK_DEVICE = (
    select(Device).where(Device.id == bindparam("device_id")).with_for_update(key_share=True)
)
_FOR_UPDATE = (
    select(DeviceCommand)
    .where(DeviceCommand.id.in_(bindparam("ids", expanding=True)))
    .order_by(DeviceCommand.id)
    .with_for_update()
)
_PENDING_OF_DEVICE = (
    select(
        DeviceCommand,
        select(Device.status).where(Device.id == bindparam("device_id")).scalar_subquery(),
    )
    .where(DeviceCommand.device_id == bindparam("device_id"), DeviceCommand.status.in_(PENDING))
    .order_by(DeviceCommand.seq)
    .limit(bindparam("limit"))
    .with_for_update(of=DeviceCommand)
)


class CommandsRepository:
    """Reads and writes of the ``device_commands`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_device(self, device_id: str) -> Device | None:
        """The device row, locked until commit: enqueues to one device take turns.

        ``FOR NO KEY UPDATE`` on PostgreSQL (other tables' foreign-key checks still pass);
        SQLite needs no lock, its writers are serialised by ``BEGIN IMMEDIATE``.
        """
        result = await self.session.execute(_LOCK_DEVICE, {"device_id": device_id})
        return result.scalar_one_or_none()

    async def device(self, device_id: str) -> Device | None:
        return await self.session.get(Device, device_id)

    async def insert_next(self, values: Mapping[str, Any]) -> DeviceCommand:
        """Insert a command numbered one past the device's highest ``seq`` (1 when none), in
        one statement that returns the row. The caller holds the device's lock
        (:meth:`lock_device`): the statement starts after it was granted, so it sees every
        command an earlier holder committed and no number is taken twice."""
        row = (
            await self.session.execute(_INSERT_NEXT, {**values, "of_device": values["device_id"]})
        ).one()
        command = DeviceCommand(**row._mapping)
        # The row exists now: attach it as loaded, not as a new object to insert again.
        make_transient_to_detached(command)
        self.session.add(command)
        return command

    async def in_force(
        self,
        device_id: str,
        names: Sequence[str],
        args: str,
        statuses: Sequence[str],
        now: datetime,
    ) -> DeviceCommand | None:
        """The newest command to the device named one of ``names`` with exactly these
        (canonical) ``args``, in one of ``statuses`` and not expired."""
        query = (
            select(DeviceCommand)
            .where(
                DeviceCommand.device_id == device_id,
                DeviceCommand.name.in_(names),
                DeviceCommand.args == args,
                DeviceCommand.status.in_(statuses),
                DeviceCommand.expires_at > now,
            )
            .order_by(DeviceCommand.seq.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def command(self, command_id: str, *, for_update: bool = False) -> DeviceCommand | None:
        query = select(DeviceCommand).where(DeviceCommand.id == command_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def commands_for_update(self, command_ids: Sequence[str]) -> Sequence[DeviceCommand]:
        """The commands among ``command_ids`` that exist, locked (in id order)."""
        if not command_ids:
            return []
        result = await self.session.execute(_FOR_UPDATE, {"ids": sorted(set(command_ids))})
        return result.scalars().all()

    async def pending_by_ids(
        self, command_ids: Sequence[str], now: datetime
    ) -> Sequence[DeviceCommand]:
        """Commands among ``command_ids`` that may still be sent (pending, not past TTL)."""
        query = (
            select(DeviceCommand)
            .where(
                DeviceCommand.id.in_(list(command_ids)),
                DeviceCommand.status.in_(PENDING),
                DeviceCommand.expires_at > now,
            )
            .order_by(DeviceCommand.device_id, DeviceCommand.seq)
            .with_for_update()
        )
        return (await self.session.execute(query)).scalars().all()

    async def of_device(
        self,
        device_id: str,
        org_id: str,
        status: str | None,
        *,
        limit: int,
        offset: int,
    ) -> Sequence[DeviceCommand]:
        """Commands of a device queued while it belonged to ``org_id``, newest first."""
        query = select(DeviceCommand).where(
            DeviceCommand.device_id == device_id, DeviceCommand.org_id == org_id
        )
        if status is not None:
            query = query.where(DeviceCommand.status == status)
        query = query.order_by(DeviceCommand.seq.desc()).limit(limit).offset(offset)
        return (await self.session.execute(query)).scalars().all()

    async def due_to_close(
        self,
        now: datetime,
        retry_before: datetime,
        *,
        device_id: str | None = None,
        new_session: bool = False,
        limit: int,
    ) -> Sequence[DeviceCommand]:
        """Pending commands past their TTL, or sent the last allowed time and not acked."""
        exhausted = and_(
            DeviceCommand.status == CommandStatus.SENT,
            DeviceCommand.attempts >= DeviceCommand.max_attempts,
            _retry_due(retry_before, new_session),
        )
        query = select(DeviceCommand).where(
            DeviceCommand.status.in_(PENDING),
            or_(DeviceCommand.expires_at <= now, exhausted),
        )
        if device_id is not None:
            query = query.where(DeviceCommand.device_id == device_id)
        query = query.order_by(DeviceCommand.device_id, DeviceCommand.seq).limit(limit)
        # The sweep of several processes must not wait on (or handle twice) the same rows.
        query = query.with_for_update(skip_locked=device_id is None)
        return (await self.session.execute(query)).scalars().all()

    async def pending_of_device(
        self, device_id: str, *, limit: int
    ) -> tuple[Sequence[DeviceCommand], str | None]:
        """The device's pending commands in sequence order (at most ``limit``), locked, and
        the device's status (None when there is no such device or nothing is pending)."""
        params = {"device_id": device_id, "limit": limit}
        rows = (await self.session.execute(_PENDING_OF_DEVICE, params)).all()
        return [row[0] for row in rows], (rows[0][1] if rows else None)

    async def with_work(
        self, device_ids: Sequence[str], now: datetime, retry_before: datetime
    ) -> set[str]:
        """Of ``device_ids``, those with a command :meth:`due_for_delivery` or
        :meth:`due_to_close` would find now (without new-session retries): queued, sent and
        due again, or past its TTL. A device whose sent commands all wait for their ack or
        retry time is left out."""
        query = (
            select(DeviceCommand.device_id)
            .where(
                DeviceCommand.device_id.in_(list(device_ids)),
                DeviceCommand.status.in_(PENDING),
                or_(
                    DeviceCommand.status == CommandStatus.QUEUED,
                    DeviceCommand.expires_at <= now,
                    DeviceCommand.sent_at <= retry_before,
                ),
            )
            .distinct()
        )
        return set((await self.session.execute(query)).scalars())

    async def due_for_delivery(
        self,
        device_id: str,
        now: datetime,
        retry_before: datetime,
        *,
        new_session: bool,
        limit: int,
    ) -> Sequence[DeviceCommand]:
        """Queued commands and unacked sent ones due again, in sequence order, locked."""
        due_again = and_(
            DeviceCommand.status == CommandStatus.SENT,
            DeviceCommand.attempts < DeviceCommand.max_attempts,
            _retry_due(retry_before, new_session),
        )
        query = (
            select(DeviceCommand)
            .where(
                DeviceCommand.device_id == device_id,
                DeviceCommand.expires_at > now,
                or_(DeviceCommand.status == CommandStatus.QUEUED, due_again),
            )
            .order_by(DeviceCommand.seq)
            .limit(limit)
            .with_for_update()
        )
        return (await self.session.execute(query)).scalars().all()


def _retry_due(retry_before: datetime, new_session: bool) -> ColumnElement[bool]:
    if new_session:  # sent on a session that is gone: due now
        return DeviceCommand.sent_at.is_not(None)
    return DeviceCommand.sent_at <= retry_before
