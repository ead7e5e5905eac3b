"""Tables of the MQTT gateway: device events, which instance holds each device, flagged devices.

``device_events`` is keyed by (device id, event id): a device's event id is unique per device,
so a redelivered or resent event is stored once (inserts use ON CONFLICT DO NOTHING).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime


class DeviceEvent(Base):
    """One event a device reported (door opened, tamper, low battery…), as received."""

    __tablename__ = "device_events"
    __table_args__ = (
        PrimaryKeyConstraint("device_id", "event_id"),
        Index("ix_device_events_org_id_at", "org_id", "at"),
    )

    device_id: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(64))  # chosen by the device (evt "id")
    # The device's organisation when the event arrived (events stay with that organisation).
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    kind: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # device clock
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())  # platform clock
    data: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON object
    session_id: Mapped[str] = mapped_column(String(16))  # hex, the session that carried it
    seq: Mapped[int] = mapped_column(BigInteger)  # DATA frame sequence number in that session


class DeviceSession(Base):
    """The gateway instance currently holding a device's session (commands go through it)."""

    __tablename__ = "device_sessions"

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    instance: Mapped[int] = mapped_column(Integer, index=True)
    session_id: Mapped[str] = mapped_column(String(16))  # hex of the 8-byte session id
    since: Mapped[datetime] = mapped_column(UTCDateTime())


class DeviceSecurityFlag(Base):
    """A device the gateway saw failing repeatedly (replays, forgeries…): marked suspicious."""

    __tablename__ = "device_security_flags"

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    suspicious_since: Mapped[datetime] = mapped_column(UTCDateTime())
    last_flagged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_reason: Mapped[str] = mapped_column(String(64))
    times_flagged: Mapped[int] = mapped_column(Integer, default=1)
