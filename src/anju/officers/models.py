"""Tables of officer jurisdictions and of the append-only record of officer queries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime


class OfficerJurisdiction(Base):
    """One region-code prefix (GB/T 2260: 2, 4 or 6 digits) an officer account may query."""

    __tablename__ = "officer_jurisdictions"

    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    region_prefix: Mapped[str] = mapped_column(String(6), primary_key=True)
    granted_by: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OfficerQuery(Base):
    """One officer query, answered or refused. Rows are only ever inserted (no update or
    delete path exists); each is also an ``officers.query`` audit entry."""

    __tablename__ = "officer_queries"
    __table_args__ = (
        Index("ix_officer_queries_at", "at"),
        Index("ix_officer_queries_officer_org_id_at", "officer_org_id", "at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    officer: Mapped[str] = mapped_column(String(200))  # audit actor, account:<id>
    officer_org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    basis_type: Mapped[str] = mapped_column(String(32))
    case_number: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)  # officer's stated reason, no PI by rule
    kind: Mapped[str] = mapped_column(String(16))  # person | lock
    criteria: Mapped[str] = mapped_column(Text)  # JSON without PI (document type, lock, window)
    unmask: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(16))  # answered | refused
    refusal: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subject_ids: Mapped[str] = mapped_column(Text)  # JSON list of pseudonymous subject ids
    result_count: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
