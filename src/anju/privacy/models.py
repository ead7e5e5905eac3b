"""Tables of the privacy domain: subjects' wrapped data keys and the master-key check rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime

SUBJECT_ID_LENGTH = 64


class SubjectDataKey(Base):
    """One SM4 data key of one data subject, wrapped by a master key (never stored in clear).

    ``wrapped_key`` starts with the master key's ``AMK``+version prefix; ``master_version``
    repeats that version so status and rewrap can count and select without parsing blobs.
    Crypto-shredding sets ``wrapped_key`` and ``master_version`` to NULL and stamps
    ``shredded_at``: the row stays as a tombstone so the subject cannot silently get a new key.
    """

    __tablename__ = "privacy_subject_keys"

    subject_id: Mapped[str] = mapped_column(String(SUBJECT_ID_LENGTH), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    master_version: Mapped[int | None] = mapped_column(Integer, index=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    shredded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MasterKeyCheck(Base):
    """A known value wrapped under one master key version: proves the keyring fits the database."""

    __tablename__ = "privacy_key_checks"

    master_version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    wrapped_check: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
