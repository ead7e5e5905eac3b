"""What stays need from the properties and reporting domains, as protocols, and the adapters
used until those domains are wired in (docs/stays.md, "Rooms and reports").

Rooms: a room exists in an organisation and has room locks and common doors. Reports: the
check-in and check-out reports owed to the regulator are queued in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.repository import AccessRepository
from anju.audit import AuditLog
from anju.errors import NotFound
from anju.platform import Platform

#: Place kinds of doors shared by every guest of a building (entrances, gates, corridors).
COMMON_PLACE_KINDS = ("building_entrance", "gate", "common_door")


@dataclass(frozen=True)
class RoomDoors:
    room_locks: tuple[str, ...]
    common_doors: tuple[str, ...]


class RoomDirectory(Protocol):
    async def doors_of_room(self, org_id: str, room_id: str) -> RoomDoors: ...


class ReportQueue(Protocol):
    async def queue_check_in(
        self, *, org_id: str, stay_id: str, subject_id: str, room_id: str, at: datetime
    ) -> object: ...

    async def queue_check_out(
        self, *, org_id: str, stay_id: str, subject_id: str, room_id: str, at: datetime
    ) -> object: ...


def room_not_found() -> NotFound:
    return NotFound("房间不存在 / no such room", details={"field": "room_id"})


class LockPlaceRooms:
    """Rooms as the device registry knows them: the locks claimed with place ``room`` and the
    room's reference, plus the organisation's common doors (until properties are wired)."""

    def __init__(self, session: AsyncSession) -> None:
        self._repo = AccessRepository(session)

    async def doors_of_room(self, org_id: str, room_id: str) -> RoomDoors:
        rooms = await self._repo.org_locks(org_id, place_kind="room", place_ref=room_id)
        if not rooms:
            raise room_not_found()
        common = [
            d.id
            for kind in COMMON_PLACE_KINDS
            for d in await self._repo.org_locks(org_id, place_kind=kind)
        ]
        return RoomDoors(tuple(d.id for d in rooms), tuple(common))


class AuditedReportQueue:
    """Records that a report is owed (``stays.report_owed``) until the reporting domain's
    outbox is wired in: the audit log says which reports are owed."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self._audit = AuditLog(platform)
        self._session = session

    async def _owed(
        self, kind: str, org_id: str, stay_id: str, subject_id: str, room_id: str, at: datetime
    ) -> None:
        await self._audit.record(
            self._session,
            action="stays.report_owed",
            actor="system",
            org_id=org_id,
            target=f"booking:{stay_id}",
            details={"kind": kind, "subject": subject_id, "room": room_id, "at": at.isoformat()},
        )

    async def queue_check_in(
        self, *, org_id: str, stay_id: str, subject_id: str, room_id: str, at: datetime
    ) -> object:
        await self._owed("check_in", org_id, stay_id, subject_id, room_id, at)
        return None

    async def queue_check_out(
        self, *, org_id: str, stay_id: str, subject_id: str, room_id: str, at: datetime
    ) -> object:
        await self._owed("check_out", org_id, stay_id, subject_id, room_id, at)
        return None
