"""Every query of the stays domain."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from anju.stays.models import (
    Booking,
    ChannelSecret,
    IcalFeed,
    InboundEvent,
    StayGuest,
    StayVisitor,
)
from anju.stays.rules import HOLDING, BookingStatus


def room_lock_key(org_id: str, room_id: str) -> int:
    """The pg_advisory_xact_lock key of one room's calendar (64 bits of SHA-256, signed)."""
    digest = hashlib.sha256(f"anju/stays/room|{org_id}|{room_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class StaysRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(
        self,
        row: Booking | StayGuest | StayVisitor | ChannelSecret | InboundEvent | IcalFeed,
    ) -> None:
        self.session.add(row)

    async def lock_room_calendar(self, org_id: str, room_id: str) -> None:
        """Serialise bookings of one room until commit. PostgreSQL: a transaction-scoped
        advisory lock; SQLite: every write transaction is already exclusive (BEGIN IMMEDIATE)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": room_lock_key(org_id, room_id)}
            )

    # --- bookings --------------------------------------------------------------------------
    async def booking(self, booking_id: str, *, for_update: bool = False) -> Booking | None:
        query = select(Booking).where(Booking.id == booking_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def by_ref(self, org_id: str, channel: str, ref: str) -> Booking | None:
        query = select(Booking).where(
            Booking.org_id == org_id, Booking.channel == channel, Booking.external_ref == ref
        )
        return (await self.session.execute(query.with_for_update())).scalar_one_or_none()

    async def overlapping(
        self, org_id: str, room_id: str, start: datetime, end: datetime, *, exclude: str | None
    ) -> Sequence[Booking]:
        """Bookings holding the room somewhere in [start, end) (half-open: a stay ending at
        noon and one starting at noon do not overlap)."""
        query = select(Booking).where(
            Booking.org_id == org_id,
            Booking.room_id == room_id,
            Booking.status.in_([s.value for s in HOLDING]),
            Booking.starts_at < end,
            Booking.ends_at > start,
        )
        if exclude is not None:
            query = query.where(Booking.id != exclude)
        return (await self.session.execute(query.limit(5))).scalars().all()

    async def bookings(
        self,
        org_id: str,
        *,
        room_id: str | None = None,
        status: str | None = None,
        starting_from: datetime | None = None,
        starting_before: datetime | None = None,
        channel: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Sequence[Booking]:
        query = select(Booking).where(Booking.org_id == org_id)
        if room_id is not None:
            query = query.where(Booking.room_id == room_id)
        if status is not None:
            query = query.where(Booking.status == status)
        if starting_from is not None:
            query = query.where(Booking.starts_at >= starting_from)
        if starting_before is not None:
            query = query.where(Booking.starts_at < starting_before)
        if channel is not None:
            query = query.where(Booking.channel == channel)
        query = query.order_by(Booking.starts_at, Booking.id).limit(limit).offset(offset)
        return (await self.session.execute(query)).scalars().all()

    async def overdue_arrivals(self, before: datetime, limit: int) -> Sequence[Booking]:
        """Booked (not checked in) bookings that started before ``before``, any organisation."""
        query = (
            select(Booking)
            .where(Booking.status == BookingStatus.BOOKED, Booking.starts_at < before)
            .order_by(Booking.starts_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(query)).scalars().all()

    async def feed_refs(self, org_id: str, room_id: str, channel: str) -> Sequence[Booking]:
        """Bookings of a room imported from ``channel`` still booked (for feed reconciliation)."""
        query = select(Booking).where(
            Booking.org_id == org_id,
            Booking.room_id == room_id,
            Booking.channel == channel,
            Booking.status == BookingStatus.BOOKED,
        )
        return (await self.session.execute(query)).scalars().all()

    # --- guests and visitors ---------------------------------------------------------------
    async def guests(self, booking_id: str) -> Sequence[StayGuest]:
        query = select(StayGuest).where(StayGuest.booking_id == booking_id)
        return (await self.session.execute(query.order_by(StayGuest.checked_in_at))).scalars().all()

    async def visitors(self, booking_id: str) -> Sequence[StayVisitor]:
        query = select(StayVisitor).where(StayVisitor.booking_id == booking_id)
        return (await self.session.execute(query.order_by(StayVisitor.created_at))).scalars().all()

    # --- channels and feeds ----------------------------------------------------------------
    async def channel_secret(self, org_id: str, channel: str) -> ChannelSecret | None:
        return await self.session.get(ChannelSecret, (org_id, channel))

    async def event_seen(self, org_id: str, channel: str, event_id: str) -> bool:
        return await self.session.get(InboundEvent, (org_id, channel, event_id)) is not None

    async def feed(self, feed_id: str) -> IcalFeed | None:
        return await self.session.get(IcalFeed, feed_id)

    async def feed_of_room(self, org_id: str, room_id: str) -> IcalFeed | None:
        query = select(IcalFeed).where(IcalFeed.org_id == org_id, IcalFeed.room_id == room_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def feeds(self, org_id: str | None = None, limit: int = 1000) -> Sequence[IcalFeed]:
        query = select(IcalFeed)
        if org_id is not None:
            query = query.where(IcalFeed.org_id == org_id)
        query = query.order_by(IcalFeed.id).limit(limit)
        return (await self.session.execute(query)).scalars().all()
