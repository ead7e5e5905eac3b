"""Tables of tenants' requests (text sealed under the person's key), their status timeline,
and staff activity records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime
from anju.privacy.column import EncryptedPI, Sealed

#: A sequence on both backends (SQLite auto-increments only INTEGER PRIMARY KEY).
Sequence = BigInteger().with_variant(Integer(), "sqlite")


class TenantRequest(Base):
    """A repair request or feedback of one registered person."""

    __tablename__ = "tenant_requests"
    __table_args__ = (
        Index("ix_tenant_requests_org_id_status", "org_id", "status"),
        Index("ix_tenant_requests_person_id", "person_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36))
    person_id: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))  # the body's data key
    kind: Mapped[str] = mapped_column(String(16))  # repair | feedback
    place_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)  # room, no PI
    body: Mapped[Sealed] = mapped_column(EncryptedPI())
    status: Mapped[str] = mapped_column(String(16))
    assignee_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # account id
    created_by: Mapped[str] = mapped_column(String(200))  # person:<id> or account:<id>
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TenantRequestChange(Base):
    """One step of a request's timeline (created, status change, assignment)."""

    __tablename__ = "tenant_request_changes"
    __table_args__ = (Index("ix_tenant_request_changes_request_id_id", "request_id", "id"),)

    id: Mapped[int] = mapped_column(Sequence, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("tenant_requests.id", ondelete="CASCADE")
    )
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    assignee_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class StaffActivity(Base):
    """A staff member's visit (cleaning, viewing, repair, inspection) to some locks' doors.

    ``access_subject`` is the subject id the staff member's access grants use: the unlock
    records of that subject on ``device_ids`` within [started_at, ended_at] are the access the
    visit used (looked up when read, so records a lock uploads late still appear)."""

    __tablename__ = "staff_activities"
    __table_args__ = (Index("ix_staff_activities_org_id_started_at", "org_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36))
    account_id: Mapped[str] = mapped_column(String(36))  # the staff member
    access_subject: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))
    device_ids: Mapped[str] = mapped_column(Text)  # JSON list of lock device ids
    request_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
