"""``device_sessions``: which gateway instance holds each device's session (session affinity).

A row is written when a session is confirmed and removed when that same session ends; a newer
session (on any instance) overwrites it. Commands for a device are sent only by the instance
its row names, so an instance that lost a device to another stops sending to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from anju.gateway.models import DeviceSession


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that supports ON CONFLICT on the session's backend (PostgreSQL or SQLite)."""
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


async def claim(
    session: AsyncSession, device_id: str, instance: int, session_id: bytes, now: datetime
) -> None:
    """Record that ``instance`` now holds ``device_id``'s session ``session_id``."""
    values = {"instance": instance, "session_id": session_id.hex(), "since": now}
    stmt = dialect_insert(session, DeviceSession).values(device_id=device_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["device_id"], set_=values))


async def release(session: AsyncSession, device_id: str, session_id: bytes) -> bool:
    """Remove the row if it still names this session; True when it did (the device is ours)."""
    result = await session.execute(
        delete(DeviceSession).where(
            DeviceSession.device_id == device_id, DeviceSession.session_id == session_id.hex()
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def held_by(
    session: AsyncSession, instance: int, device_ids: Iterable[str] | None = None
) -> dict[str, str]:
    """device id → session id (hex) of the rows naming ``instance`` (optionally only some)."""
    query = select(DeviceSession.device_id, DeviceSession.session_id).where(
        DeviceSession.instance == instance
    )
    if device_ids is not None:
        ids = list(device_ids)
        if not ids:
            return {}
        query = query.where(DeviceSession.device_id.in_(ids))
    return {row.device_id: row.session_id for row in await session.execute(query)}


async def holder(session: AsyncSession, device_id: str) -> DeviceSession | None:
    """The row of ``device_id``, if some instance holds it."""
    return await session.get(DeviceSession, device_id)
