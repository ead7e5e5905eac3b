"""Tables of alarms and of their changes (the feed the live stream and webhooks follow)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime

#: A sequence on both backends (SQLite auto-increments only INTEGER PRIMARY KEY).
Sequence = BigInteger().with_variant(Integer(), "sqlite")


class Alarm(Base):
    """One alarm: raised by a lock or the platform, acknowledged, cleared; repeats counted."""

    __tablename__ = "alarms"
    __table_args__ = (
        Index("ix_alarms_org_id_status", "org_id", "status"),
        Index("ix_alarms_org_id_raised_at", "org_id", "raised_at"),
        Index("ix_alarms_device_id_kind", "device_id", "kind"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # lock | platform
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # active | acknowledged | cleared
    device_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    place_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    place_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON object, no PI
    count: Mapped[int] = mapped_column(Integer, default=1)  # raises while open
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledge_note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    cleared_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    clear_note: Mapped[str | None] = mapped_column(String(500), nullable=True)


class AlarmChange(Base):
    """One change of an alarm (raised, repeated, acknowledged, cleared), in commit-ish order."""

    __tablename__ = "alarm_changes"
    __table_args__ = (Index("ix_alarm_changes_org_id_id", "org_id", "id"),)

    id: Mapped[int] = mapped_column(Sequence, primary_key=True, autoincrement=True)
    alarm_id: Mapped[str] = mapped_column(String(36), ForeignKey("alarms.id", ondelete="CASCADE"))
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    change: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
