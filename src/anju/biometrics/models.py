"""Tables of the biometrics domain: the capture log and the (sealed) face templates.

Neither holds an image or an embedding. ``biometric_templates.template`` holds a protected
template sealed by the PI vault (declared as ``biometric.face_template`` in the PI inventory).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime
from anju.privacy.column import EncryptedPI, Sealed
from anju.privacy.models import SUBJECT_ID_LENGTH


class FaceCapture(Base):
    """One use of the face engine (L8f): when, by whom, on which device, what came of it."""

    __tablename__ = "biometric_captures"
    __table_args__ = (Index("ix_biometric_captures_at", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    operator: Mapped[str] = mapped_column(String(128))
    device: Mapped[str] = mapped_column(String(64))
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))  # document_1to1, enrol, template_1to1, ...
    outcome: Mapped[str] = mapped_column(String(16))  # match, no_match, refused, enrolled
    reasons: Mapped[str] = mapped_column(String(400), default="")  # reason codes, comma-separated
    liveness: Mapped[str] = mapped_column(String(16), default="not_checked")
    subject_id: Mapped[str | None] = mapped_column(String(SUBJECT_ID_LENGTH), nullable=True)


class FaceTemplate(Base):
    """A subject's protected face template, one row per version; revoking drops the sealed bits."""

    __tablename__ = "biometric_templates"
    __table_args__ = (UniqueConstraint("subject_id", "version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_ID_LENGTH), index=True)
    version: Mapped[int] = mapped_column(Integer)
    scheme: Mapped[str] = mapped_column(String(32))
    template: Mapped[Sealed | None] = mapped_column(EncryptedPI(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LivenessChallenge(Base):
    """A liveness challenge the platform issued for a remote check (F8): single use, short-lived,
    bound to who asked for it, the person checked and what it is for."""

    __tablename__ = "biometric_challenges"
    __table_args__ = (
        Index("ix_biometric_challenges_expires_at", "expires_at"),
        Index("ix_biometric_challenges_actor", "actor"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    actor: Mapped[str] = mapped_column(String(200))
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    subject_id: Mapped[str | None] = mapped_column(String(SUBJECT_ID_LENGTH), nullable=True)
    purpose: Mapped[str] = mapped_column(String(32))
    actions: Mapped[str] = mapped_column(String(64))  # comma-separated, in the order asked
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
