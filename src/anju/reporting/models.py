"""Tables of regulator reporting: the report outbox, every delivery attempt, and which unlock
records a report already carries.

A report row holds *references* only (stay, pseudonymous subject, room, unlock record ids),
never PI: the payload — with the guest's name and document — is built, signed and enveloped at
send time (docs/reporting.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime

Sequence = BigInteger().with_variant(Integer(), "sqlite")


class Report(Base):
    """One report owed to the regulator: the outbox row, then its delivery state.

    ``id`` is the idempotency key the regulator de-duplicates by. ``dedup_key`` makes queueing
    idempotent on our side (the same check-in queued twice is one report).
    """

    __tablename__ = "regulator_reports"
    __table_args__ = (
        Index("ix_regulator_reports_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_regulator_reports_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    org_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))  # check_in | check_out | unlocks
    stay_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    room_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    window_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    window_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    unlock_ids: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list of ids
    record_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | parked
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ReportAttempt(Base):
    """One HTTP attempt of a report: when, the answer's status, how long, what went wrong."""

    __tablename__ = "regulator_report_attempts"

    id: Mapped[int] = mapped_column(Sequence, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("regulator_reports.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | retry | parked


class ReportedUnlock(Base):
    """An unlock record already queued in a report (overlapping windows report it once)."""

    __tablename__ = "regulator_reported_unlocks"

    unlock_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    report_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("regulator_reports.id", ondelete="CASCADE"), index=True
    )
