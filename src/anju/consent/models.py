"""Tables of the consent domain: published notices and the append-only consent events.

Neither is ever updated. A new notice text is a new version row; a withdrawal is a new event.
Only the retention sweep deletes consent events, once their keep period has passed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime
from anju.privacy.models import SUBJECT_ID_LENGTH


class Notice(Base):
    """One published version of one kind of notice of one organisation."""

    __tablename__ = "consent_notices"
    __table_args__ = (UniqueConstraint("org_id", "kind", "version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    text_zh: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    items: Mapped[str] = mapped_column(Text)  # canonical JSON: purposes, categories, required
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))  # SM3 of the canonical content
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_by: Mapped[str] = mapped_column(String(200))


class ConsentEvent(Base):
    """One act of the person about one purpose of one notice version: given, refused, withdrawn."""

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_subject", "org_id", "subject_id", "notice_kind", "purpose"),
        Index("ix_consent_events_subject_id", "subject_id"),
        # Two concurrent events of one subject cannot take the same place in its history.
        UniqueConstraint("org_id", "subject_id", "seq", name="uq_consent_events_seq"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)  # order of the subject's events (same instant)
    org_id: Mapped[str] = mapped_column(String(36))
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_ID_LENGTH))
    notice_id: Mapped[str] = mapped_column(String(32))
    notice_kind: Mapped[str] = mapped_column(String(32))
    notice_version: Mapped[int] = mapped_column(Integer)
    notice_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    purpose: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))  # given | refused | withdrawn
    separate: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str] = mapped_column(String(16))  # kiosk | app | front_desk | paper
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    signature: Mapped[bytes] = mapped_column(LargeBinary)  # SM2 over the receipt body
