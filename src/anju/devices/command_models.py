"""Table of device commands: the store-and-forward outbox of the platform → device direction.

A command row is written in the transaction of the change that asks for it (the outbox): if that
transaction rolls back, the command never existed and is never sent. ``seq`` numbers the
commands of one device (1, 2, 3, …) and fixes the order they are sent in. ``args`` is the
canonical JSON text of the arguments; credential payloads in it must be end-to-end encrypted to
the lock's secure element by whoever builds them (docs/devices.md, "Commands").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime


class DeviceCommand(Base):
    """One command to one device: what, in which order, its delivery state and its outcome."""

    __tablename__ = "device_commands"
    __table_args__ = (
        # One sequence number per device; also the index that orders a device's commands.
        UniqueConstraint("device_id", "seq"),
        # The expiry sweep looks for pending commands whose time is up.
        Index("ix_device_commands_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid text
    device_id: Mapped[str] = mapped_column(String(32), ForeignKey("devices.id", ondelete="CASCADE"))
    # The organisation that owned the device when the command was queued (visibility).
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(64))
    args: Mapped[str] = mapped_column(Text)  # canonical JSON object
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # When the device answered (ok or not); NULL when it never did.
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # When the command reached its final status (acked, failed, expired, cancelled).
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The device's code for a refused command, or the platform's reason (no_ack, cancelled…).
    result_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
