"""Tables of the retention domain: the anchor events periods count from, and sweep runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime
from anju.privacy.models import SUBJECT_ID_LENGTH


class RetentionAnchorEvent(Base):
    """When an anchor (check-out, account closure, verification done) happened for a subject."""

    __tablename__ = "retention_anchors"
    __table_args__ = (Index("ix_retention_anchors_due", "anchor", "at"),)

    subject_id: Mapped[str] = mapped_column(String(SUBJECT_ID_LENGTH), primary_key=True)
    anchor: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class RetentionRun(Base):
    """One run of the sweep: when, by whom, how much each sweeper removed (counts only)."""

    __tablename__ = "retention_runs"
    __table_args__ = (Index("ix_retention_runs_started_at", "started_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    removed: Mapped[int] = mapped_column(Integer)
    counts: Mapped[str] = mapped_column(Text)  # canonical JSON {kind: count}
