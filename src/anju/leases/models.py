"""Tables: leases, their tenants, rent instalments, payments, and the org's lease settings.

Amounts are integer fen (分). Dates are local dates in Asia/Shanghai (docs/leases.md).
Tenants are pseudonymous ``subject_id``s of people registered in ``anju.people``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime


class Lease(Base):
    """One lease of one room: draft → active → ended | terminated."""

    __tablename__ = "leases"
    __table_args__ = (
        Index("ix_leases_org_id_status", "org_id", "status"),
        Index("ix_leases_room_id_status", "room_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36), ForeignKey("organisations.id"))
    room_id: Mapped[str] = mapped_column(String(36), ForeignKey("property_rooms.id"))
    status: Mapped[str] = mapped_column(String(16))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)  # inclusive: access ends at the day's end
    monthly_rent_fen: Mapped[int] = mapped_column(BigInteger)
    due_day: Mapped[int] = mapped_column(Integer)  # 1–28
    currency: Mapped[str] = mapped_column(String(3))
    grace_days: Mapped[int] = mapped_column(Integer)
    in_arrears: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class LeaseTenant(Base):
    """A tenant of a lease, with the access grant and the arrears freeze made for them."""

    __tablename__ = "lease_tenants"
    __table_args__ = (
        PrimaryKeyConstraint("lease_id", "subject_id"),
        Index("ix_lease_tenants_subject_id", "subject_id"),
    )

    lease_id: Mapped[str] = mapped_column(String(36), ForeignKey("leases.id", ondelete="CASCADE"))
    subject_id: Mapped[str] = mapped_column(String(64))
    grant_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    freeze_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class Instalment(Base):
    """One rent period: its dates, due date, amount and what has been paid of it."""

    __tablename__ = "lease_instalments"
    __table_args__ = (
        UniqueConstraint("lease_id", "seq"),
        Index("ix_lease_instalments_due_date", "due_date"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lease_id: Mapped[str] = mapped_column(String(36), ForeignKey("leases.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # inclusive
    due_date: Mapped[date] = mapped_column(Date)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class Payment(Base):
    """A payment received; ``idempotency_key`` makes a replayed notification apply once."""

    __tablename__ = "lease_payments"
    __table_args__ = (UniqueConstraint("lease_id", "idempotency_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lease_id: Mapped[str] = mapped_column(String(36), ForeignKey("leases.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(String(36))
    idempotency_key: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reference: Mapped[str] = mapped_column(String(100))
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LeaseSettings(Base):
    """An organisation's lease defaults (the grace period of new leases)."""

    __tablename__ = "lease_settings"

    org_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("organisations.id"), primary_key=True
    )
    grace_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
