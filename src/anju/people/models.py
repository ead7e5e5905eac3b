"""Tables of the people domain: registered people and organisations, signed verification
results, and the short-lived access links a person uses to exercise their rights.

Every PI value is an :class:`EncryptedPI` column sealed by the vault under the person's
``subject_id``; ``*_index`` columns are blind indexes (HMAC-SM3, keyed) for exact look-ups and
duplicate detection. ``masked`` holds the de-identified display forms (``张*``,
``110105********002X``) so that roles without a decryption purpose can see who is who without
an audited decryption per page view; it never holds a full value.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime
from anju.privacy.column import EncryptedPI, Sealed
from anju.privacy.models import SUBJECT_ID_LENGTH


class Person(Base):
    """One registered individual (``kind`` individual) or organisation (``kind`` organisation)."""

    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("org_scope", "document_index", name="uq_people_org_document"),
        Index("ix_people_org_phone", "org_id", "phone_index"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # org_id, or "-" without one: NULLs never collide in a unique constraint, this does.
    org_scope: Mapped[str] = mapped_column(String(36))
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_ID_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # individual | organisation
    document_type: Mapped[str] = mapped_column(String(32))
    name: Mapped[Sealed | None] = mapped_column(EncryptedPI(), nullable=True)
    document_number: Mapped[Sealed | None] = mapped_column(EncryptedPI(), nullable=True)
    phone: Mapped[Sealed | None] = mapped_column(EncryptedPI(), nullable=True)
    email: Mapped[Sealed | None] = mapped_column(EncryptedPI(), nullable=True)
    address: Mapped[Sealed | None] = mapped_column(EncryptedPI(), nullable=True)
    legal_representative: Mapped[Sealed | None] = mapped_column(EncryptedPI(), nullable=True)
    document_index: Mapped[bytes | None] = mapped_column(LargeBinary(), nullable=True)
    phone_index: Mapped[bytes | None] = mapped_column(LargeBinary(), nullable=True)
    masked: Mapped[str] = mapped_column(Text())  # JSON of masked display forms
    status: Mapped[str] = mapped_column(String(16))  # active | deleted
    registered_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class IdentityVerification(Base):
    """One identity verification and its result, signed by the platform's ``verification`` key.

    ``statement`` is canonical JSON without PI (ids, method, provider reference, outcome, who
    checked, when); ``signature`` is SM2 over it. A rejected verification is kept too (with no
    ``person_id``: nobody was registered).
    """

    __tablename__ = "people_verifications"
    __table_args__ = (Index("ix_people_verifications_subject", "subject_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    person_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_ID_LENGTH))
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    method: Mapped[str] = mapped_column(String(32))  # ctid | id_card_reader | staff_offline
    outcome: Mapped[str] = mapped_column(String(16))  # verified | rejected
    checked_by: Mapped[str] = mapped_column(String(200))
    consent_receipt_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The remote face check this verification used (online registration): usable once.
    face_capture_id: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    statement: Mapped[str] = mapped_column(Text())
    signature: Mapped[bytes] = mapped_column(LargeBinary())


class SubjectAccessLink(Base):
    """A short-lived link a front-desk clerk hands to a person so they can see, export, correct
    or delete their own data. Only the SM3 hash of the link's secret is stored."""

    __tablename__ = "people_access_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(), unique=True)
    person_id: Mapped[str] = mapped_column(String(32), index=True)
    issued_by: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked: Mapped[bool] = mapped_column(Boolean(), default=False)
