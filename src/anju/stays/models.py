"""Tables of stays: bookings, the guests checked in under them, visitors, and what imports
from booking systems need (channel secrets, seen webhook events, iCal feeds).

The lead guest's contact is PI: sealed by the vault under the booking's own pseudonymous
``contact_subject`` (crypto-shredded with it), with only masked forms kept in clear.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime
from anju.privacy.column import EncryptedPI, Sealed
from anju.privacy.models import SUBJECT_ID_LENGTH


class Booking(Base):
    """One booking of one room for a period, from a channel; booked → checked_in → …"""

    __tablename__ = "stays_bookings"
    __table_args__ = (
        # NULL refs (direct bookings) never collide; an imported one is idempotent by its ref.
        UniqueConstraint("org_id", "channel", "external_ref", name="uq_stays_bookings_ref"),
        Index("ix_stays_bookings_room_period", "org_id", "room_id", "starts_at"),
        Index("ix_stays_bookings_status_starts", "status", "starts_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36))
    room_id: Mapped[str] = mapped_column(String(36), ForeignKey("property_rooms.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    headcount: Mapped[int] = mapped_column(Integer())
    channel: Mapped[str] = mapped_column(String(16))
    external_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    contact_subject: Mapped[str] = mapped_column(String(SUBJECT_ID_LENGTH))
    contact_name: Mapped[Sealed | None] = mapped_column(EncryptedPI(), nullable=True)
    contact_phone: Mapped[Sealed | None] = mapped_column(EncryptedPI(), nullable=True)
    contact_masked: Mapped[str] = mapped_column(Text(), default="{}")  # JSON, masked forms
    headcount_override: Mapped[bool] = mapped_column(Boolean(), default=False)
    # Staff's reason for checking in a number of guests other than the headcount; kept here
    # with the booking (deleted with it), never copied into the permanent audit log.
    override_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StayGuest(Base):
    """A guest checked in under a booking: their grant and the credentials issued to them."""

    __tablename__ = "stays_guests"

    booking_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("stays_bookings.id", ondelete="CASCADE"), primary_key=True
    )
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_ID_LENGTH), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(36))
    passcode_id: Mapped[str] = mapped_column(String(36))
    ekey_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    face_consented: Mapped[bool] = mapped_column(Boolean())
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StayVisitor(Base):
    """A visitor of a checked-in stay: a temporary pass (≤ 24 h) to some of its doors."""

    __tablename__ = "stays_visitors"
    __table_args__ = (Index("ix_stays_visitors_booking", "booking_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    booking_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("stays_bookings.id", ondelete="CASCADE")
    )
    org_id: Mapped[str] = mapped_column(String(36))
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_ID_LENGTH))
    grant_id: Mapped[str] = mapped_column(String(36))
    passcode_id: Mapped[str] = mapped_column(String(36))
    doors: Mapped[str] = mapped_column(String(16))  # room | common | both
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChannelSecret(Base):
    """The signing secret of one booking channel's webhooks, wrapped by the key provider."""

    __tablename__ = "stays_channel_secrets"

    org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    secret_wrapped: Mapped[bytes] = mapped_column(LargeBinary())
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InboundEvent(Base):
    """A webhook event id already processed: the same id again is a replay."""

    __tablename__ = "stays_inbound_events"

    org_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IcalFeed(Base):
    """A room's calendar on a booking site, polled for bookings (one feed per room)."""

    __tablename__ = "stays_ical_feeds"
    __table_args__ = (UniqueConstraint("org_id", "room_id", name="uq_stays_ical_feeds_room"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36))
    room_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("property_rooms.id", ondelete="CASCADE")
    )
    url: Mapped[str] = mapped_column(String(2000))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(200), nullable=True)
