"""What the gateway stored, read back for assertions; commands queued the way the API does."""

from __future__ import annotations

from sqlalchemy import select

from anju.devices.command_models import DeviceCommand
from anju.devices.commands import CommandService
from anju.gateway.dispatch import notify_commands
from anju.gateway.models import DeviceEvent, DeviceSecurityFlag, DeviceSession
from anju.kit.clock import FixedClock
from anju.platform import Platform


def now_ms(clock: FixedClock) -> int:
    return int(clock.now().timestamp() * 1000)


def now_s(clock: FixedClock) -> int:
    return int(clock.now().timestamp())


async def events_of(platform: Platform, device_id: str) -> list[DeviceEvent]:
    """The device's stored events, by event id."""
    async with platform.db.transaction() as session:
        query = select(DeviceEvent).where(DeviceEvent.device_id == device_id)
        return list((await session.execute(query.order_by(DeviceEvent.event_id))).scalars())


async def session_row(platform: Platform, device_id: str) -> DeviceSession | None:
    async with platform.db.transaction() as session:
        return await session.get(DeviceSession, device_id)


async def enqueue(platform: Platform, device_id: str, name: str = "unlock") -> str:
    """Queue a command (as the CLI does, TTL 600 s) and wake this process's dispatchers."""
    async with platform.db.transaction() as session:
        command = await CommandService(platform, session).enqueue(
            "cli", None, device_id, name, {}, 600
        )
        command_id = command.id
    notify_commands()
    return command_id


async def command_row(platform: Platform, command_id: str) -> DeviceCommand:
    async with platform.db.transaction() as session:
        row = await session.get(DeviceCommand, command_id)
        assert row is not None
        return row


async def security_flags(platform: Platform) -> dict[str, int]:
    """Device id → how many times the gateway flagged it for repeated failures."""
    async with platform.db.transaction() as session:
        rows = (await session.execute(select(DeviceSecurityFlag))).scalars()
        return {row.device_id: row.times_flagged for row in rows}
