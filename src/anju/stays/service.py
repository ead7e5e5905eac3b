"""Bookings: create, modify, cancel, import from booking systems idempotently, no-shows
(docs/stays.md, "Bookings"). The caller commits."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import AuditLog
from anju.db import new_id
from anju.errors import InvalidInput
from anju.people.service import new_subject_id
from anju.platform import Platform
from anju.privacy.vault import PIVault
from anju.properties.service import PropertyService
from anju.stays.models import Booking
from anju.stays.ports import RoomDirectory
from anju.stays.repository import StaysRepository
from anju.stays.rules import (
    BookingOverlap,
    BookingState,
    BookingStatus,
    Channel,
    booking_not_found,
    check_headcount,
    check_period,
    check_ref,
    check_room_id,
    local,
    parse_channel,
)

CONTACT_NAME = "booking.contact_name"
CONTACT_PHONE = "booking.contact_phone"
PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,30}$")
MAX_NAME = 100
#: No-shows marked per run of the task.
NO_SHOW_BATCH = 500


@dataclass(frozen=True)
class BookingDraft:
    """What a booking is made of (times aware, any offset)."""

    room_id: str
    starts_at: datetime
    ends_at: datetime
    headcount: int = 1
    channel: str = Channel.DIRECT
    external_ref: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None


def check_contact(name: str | None, phone: str | None) -> None:
    if name is not None and (not name.strip() or len(name) > MAX_NAME):
        raise InvalidInput(f"contact name: 1–{MAX_NAME} characters", details={"field": "name"})
    if phone is not None and not PHONE.fullmatch(phone):
        raise InvalidInput("联系电话无效 / bad contact phone", details={"field": "phone"})


class BookingService:
    """Bookings of one transaction (the caller commits)."""

    def __init__(
        self, platform: Platform, session: AsyncSession, *, rooms: RoomDirectory | None = None
    ) -> None:
        self.platform = platform
        self.session = session
        self.clock = platform.clock
        self.repo = StaysRepository(session)
        self.audit = AuditLog(platform)
        self.rooms: RoomDirectory = (
            rooms if rooms is not None else PropertyService(platform, session)
        )
        self.vault = PIVault(platform)

    async def record(
        self, action: str, actor: str, booking: Booking, **details: str | int | bool | None
    ) -> None:
        await self.audit.record(
            self.session,
            action=action,
            actor=actor,
            org_id=booking.org_id,
            target=f"booking:{booking.id}",
            details={"booking": booking.id, "status": booking.status, **details},
        )

    # --- reading ---------------------------------------------------------------------------
    async def get(self, org_id: str, booking_id: str, *, for_update: bool = False) -> Booking:
        booking = (
            await self.repo.booking(booking_id, for_update=for_update)
            if len(booking_id) <= 36
            else None
        )
        if booking is None or booking.org_id != org_id:
            raise booking_not_found()
        return booking

    async def search(self, org_id: str, **where: Any) -> Sequence[Booking]:
        return await self.repo.bookings(org_id, **where)

    # --- writing ---------------------------------------------------------------------------
    async def _hold_room(
        self, org_id: str, room_id: str, start: datetime, end: datetime, exclude: str | None
    ) -> None:
        """Refuse a period another holding booking of the room overlaps (room locked first)."""
        await self.rooms.doors_of_room(org_id, room_id)  # NotFound for an unknown room
        await self.repo.lock_room_calendar(org_id, room_id)
        clash = await self.repo.overlapping(org_id, room_id, start, end, exclude=exclude)
        if clash:
            raise BookingOverlap(
                "该房间此时段已有预订 / the room is already booked for part of this period",
                details={"bookings": [b.id for b in clash]},
            )

    async def create(self, actor: str, org_id: str, draft: BookingDraft) -> Booking:
        """A new booking (``booking_overlap`` when the room is taken)."""
        room_id = check_room_id(draft.room_id)
        start, end = check_period(draft.starts_at, draft.ends_at)
        headcount = check_headcount(draft.headcount)
        channel = parse_channel(draft.channel)
        ref = check_ref(draft.external_ref)
        check_contact(draft.contact_name, draft.contact_phone)
        await self._hold_room(org_id, room_id, start, end, None)
        now = self.clock.now()
        booking = Booking(
            id=new_id(),
            org_id=org_id,
            room_id=room_id,
            starts_at=start,
            ends_at=end,
            headcount=headcount,
            channel=channel.value,
            external_ref=ref,
            status=BookingStatus.BOOKED.value,
            contact_subject=new_subject_id(),
            headcount_override=False,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        await self._seal_contact(booking, draft.contact_name, draft.contact_phone)
        self.repo.add(booking)
        await self.session.flush()
        await self.record("stays.booking.created", actor, booking, channel=channel.value)
        return booking

    async def _seal_contact(self, booking: Booking, name: str | None, phone: str | None) -> None:
        masked: dict[str, str] = json.loads(booking.contact_masked or "{}")
        subject = booking.contact_subject
        if name is not None:
            booking.contact_name = await self.vault.seal(
                self.session, CONTACT_NAME, subject, booking.id, name
            )
            masked["name"] = self.vault.mask(CONTACT_NAME, name)
        if phone is not None:
            booking.contact_phone = await self.vault.seal(
                self.session, CONTACT_PHONE, subject, booking.id, phone
            )
            masked["phone"] = self.vault.mask(CONTACT_PHONE, phone)
        booking.contact_masked = json.dumps(masked, ensure_ascii=False, sort_keys=True)

    async def modify(
        self, actor: str, org_id: str, booking_id: str, draft: BookingDraft
    ) -> Booking:
        """Move a booked booking (room, period, headcount, contact); only while ``booked``."""
        booking = await self.get(org_id, booking_id, for_update=True)
        return await self._modify(actor, booking, draft)

    async def _modify(self, actor: str, booking: Booking, draft: BookingDraft) -> Booking:
        if booking.status != BookingStatus.BOOKED:
            raise BookingState(
                f"预订状态为 {booking.status}，不能修改 / a {booking.status} booking cannot change",
                details={"status": booking.status},
            )
        room_id = check_room_id(draft.room_id)
        start, end = check_period(draft.starts_at, draft.ends_at)
        headcount = check_headcount(draft.headcount)
        check_contact(draft.contact_name, draft.contact_phone)
        await self._hold_room(booking.org_id, room_id, start, end, booking.id)
        booking.room_id, booking.starts_at, booking.ends_at = room_id, start, end
        booking.headcount = headcount
        await self._seal_contact(booking, draft.contact_name, draft.contact_phone)
        booking.updated_at = self.clock.now()
        await self.session.flush()
        await self.record("stays.booking.modified", actor, booking)
        return booking

    async def cancel(self, actor: str, org_id: str, booking_id: str) -> Booking:
        """Cancel a booked booking (cancelling a cancelled one changes nothing)."""
        booking = await self.get(org_id, booking_id, for_update=True)
        return await self._cancel(actor, booking)

    async def _cancel(self, actor: str, booking: Booking) -> Booking:
        if booking.status == BookingStatus.CANCELLED:
            return booking
        if booking.status != BookingStatus.BOOKED:
            raise BookingState(
                f"预订状态为 {booking.status}，不能取消 / a {booking.status} booking cannot be "
                "cancelled",
                details={"status": booking.status},
            )
        booking.status = BookingStatus.CANCELLED.value
        booking.ended_at = booking.updated_at = self.clock.now()
        await self.session.flush()
        await self.record("stays.booking.cancelled", actor, booking)
        return booking

    # --- imports ---------------------------------------------------------------------------
    async def import_upsert(
        self, actor: str, org_id: str, draft: BookingDraft
    ) -> tuple[Booking, str]:
        """Create or move the booking the channel knows by ``external_ref``: (booking,
        ``created`` | ``modified`` | ``unchanged``). The same event twice changes nothing."""
        channel = parse_channel(draft.channel)
        ref = check_ref(draft.external_ref)
        if ref is None:
            raise InvalidInput("导入须有外部编号 / an import needs external_ref")
        existing = await self.repo.by_ref(org_id, channel.value, ref)
        if existing is None:
            return await self.create(actor, org_id, draft), "created"
        start, end = check_period(draft.starts_at, draft.ends_at)
        same = (existing.room_id, existing.starts_at, existing.ends_at, existing.headcount) == (
            draft.room_id,
            start,
            end,
            draft.headcount,
        )
        if same and (
            existing.status != BookingStatus.BOOKED or self._same_contact(existing, draft)
        ):
            return existing, "unchanged"
        return await self._modify(actor, existing, draft), "modified"

    def _same_contact(self, booking: Booking, draft: BookingDraft) -> bool:
        """Whether the draft's contact adds nothing (compared by masked form: a resend of
        the same event must not re-seal, and the clear values are not kept to compare)."""
        masked: dict[str, str] = json.loads(booking.contact_masked or "{}")
        return all(
            value is None or masked.get(key) == self.vault.mask(field, value)
            for key, field, value in (
                ("name", CONTACT_NAME, draft.contact_name),
                ("phone", CONTACT_PHONE, draft.contact_phone),
            )
        )

    async def import_cancel(
        self, actor: str, org_id: str, channel: str, ref: str
    ) -> tuple[Booking | None, str]:
        """Cancel the booking the channel knows by ``ref``: ``cancelled``, ``unchanged``
        (cancelled before) or ``unknown``."""
        existing = await self.repo.by_ref(org_id, parse_channel(channel).value, ref)
        if existing is None:
            return None, "unknown"
        if existing.status == BookingStatus.CANCELLED:
            return existing, "unchanged"
        return await self._cancel(actor, existing), "cancelled"

    # --- no-shows --------------------------------------------------------------------------
    async def mark_no_shows(self, actor: str, grace: timedelta) -> int:
        """Mark booked bookings whose start + ``grace`` has passed as no-shows; how many."""
        before = self.clock.now() - grace
        marked = 0
        for booking in await self.repo.overdue_arrivals(before, NO_SHOW_BATCH):
            booking.status = BookingStatus.NO_SHOW.value
            booking.ended_at = booking.updated_at = self.clock.now()
            await self.record("stays.booking.no_show", actor, booking)
            marked += 1
        await self.session.flush()
        return marked


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def booking_view(booking: Booking) -> dict[str, Any]:
    """A booking as shown by default: ids, period (UTC and Asia/Shanghai), masked contact."""
    return {
        "id": booking.id,
        "room_id": booking.room_id,
        "starts_at": booking.starts_at.isoformat(),
        "ends_at": booking.ends_at.isoformat(),
        "starts_local": local(booking.starts_at),
        "ends_local": local(booking.ends_at),
        "headcount": booking.headcount,
        "channel": booking.channel,
        "external_ref": booking.external_ref,
        "status": booking.status,
        "contact": json.loads(booking.contact_masked or "{}"),
        "checked_in_at": _iso(booking.checked_in_at),
        "checked_out_at": _iso(booking.checked_out_at),
    }
