"""Table of unlock records: one row per attempt a lock signed (granted or denied)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime


class UnlockRecord(Base):
    """One unlock attempt as the lock signed it, with the door it was at when it arrived.

    ``record`` and ``signature`` are kept exactly as received so an auditor can re-verify the
    record with the device's public key (non-repudiation); the other columns are its fields,
    copied for search.
    """

    __tablename__ = "unlock_records"
    __table_args__ = (
        UniqueConstraint("device_id", "event_id"),
        Index("ix_unlock_records_org_id_at", "org_id", "at"),
        Index("ix_unlock_records_org_id_device_id_at", "org_id", "device_id", "at"),
        Index("ix_unlock_records_org_id_subject_at", "org_id", "subject", "at"),
        Index("ix_unlock_records_received_at", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    device_id: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(64))
    place_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    place_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True)  # pseudonymous id
    credential_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    offline_serial: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    method: Mapped[str] = mapped_column(String(32))
    result: Mapped[str] = mapped_column(String(16))  # granted | denied
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # the lock's clock
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the platform's clock
    record: Mapped[str] = mapped_column(Text)  # canonical JSON of the signed record
    signature: Mapped[str] = mapped_column(String(200))  # base64 SM2 signature (DER)
