"""What stays need from the properties and reporting domains, as protocols: a room's doors,
and the regulator reports queued in the caller's transaction. The defaults are
:class:`anju.properties.service.PropertyService` and
:class:`anju.reporting.service.ReportingService`; tests and embedders may pass others."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from anju.properties.service import RoomDoors


class RoomDirectory(Protocol):
    async def doors_of_room(self, org_id: str, room_id: str) -> RoomDoors: ...


class ReportQueue(Protocol):
    async def queue_check_in(
        self, *, org_id: str, stay_id: str, subject_id: str, room_id: str, at: datetime
    ) -> object: ...

    async def queue_check_out(
        self, *, org_id: str, stay_id: str, subject_id: str, room_id: str, at: datetime
    ) -> object: ...
