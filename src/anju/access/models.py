"""Tables of access control: grants, credentials, per-lock deliveries, lock-wide operations,
per-lock revocation state, freezes and anomalies.

No secret is stored: a passcode is kept only as the per-lock SE-HMAC digest the lock itself
keeps (to refuse a duplicate on one lock), a card key is derived again from the keyring when
needed, and a sealed credential box (``box``) opens only in the lock's secure element.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, Bytes, UTCDateTime


class AccessGrant(Base):
    """A permission: one subject may open a set of doors within a window (and a schedule)."""

    __tablename__ = "access_grants"
    __table_args__ = (Index("ix_access_grants_org_id_subject_id", "org_id", "subject_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36), index=True)
    subject_id: Mapped[str] = mapped_column(String(64))
    person_type: Mapped[str] = mapped_column(String(16))
    selector: Mapped[str] = mapped_column(Text)  # JSON: how the doors were chosen
    device_ids: Mapped[str] = mapped_column(Text)  # JSON list of the doors (lock device ids)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    schedule: Mapped[str | None] = mapped_column(Text, nullable=True)  # protocol Schedule JSON
    uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class AccessCredential(Base):
    """One credential of a grant (passcode, card, eKey, face …), on each of the grant's doors."""

    __tablename__ = "access_credentials"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    grant_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("access_grants.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[str] = mapped_column(String(36), index=True)
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    card_uid: Mapped[str | None] = mapped_column(String(20), nullable=True)
    holder_key: Mapped[bytes | None] = mapped_column(Bytes, nullable=True)  # eKey phone key
    replaces: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class AccessDelivery(Base):
    """Where one credential stands on one lock; "installed" / "removed" only from the lock's
    verified signed receipt (:mod:`anju.access.credentials.receipts`)."""

    __tablename__ = "access_deliveries"
    __table_args__ = (
        PrimaryKeyConstraint("credential_id", "device_id"),
        Index("ix_access_deliveries_device_id_digest", "device_id", "passcode_digest"),
    )

    credential_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("access_credentials.id", ondelete="CASCADE")
    )
    device_id: Mapped[str] = mapped_column(String(32), ForeignKey("devices.id"), index=True)
    org_id: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(16), index=True)
    code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    command_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # The sealed box (opens only in the lock's SE): re-sent on resume and reconcile.
    box: Mapped[str | None] = mapped_column(Text, nullable=True)
    passcode_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AccessLockOperation(Base):
    """A lock-wide access command (freeze, unfreeze, revoke, wipe) and its receipt."""

    __tablename__ = "access_lock_operations"

    command_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), ForeignKey("devices.id"), index=True)
    org_id: Mapped[str] = mapped_column(String(36))
    op: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    freeze_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(16))  # queued | applied | refused
    code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AccessLockState(Base):
    """What the platform tracks per lock for revocation: the lock's revocation epoch (one for
    eKeys and offline passcodes, as the lock keeps it), revoked eKey ids, the offline passcode
    serial counter and revoked serials."""

    __tablename__ = "access_lock_states"

    device_id: Mapped[str] = mapped_column(String(32), ForeignKey("devices.id"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    revoked_ekeys: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    offline_serial: Mapped[int] = mapped_column(Integer, default=0)  # last serial issued
    revoked_serials: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccessFreeze(Base):
    """A subject's access frozen in an organisation (arrears, violation …) until lifted."""

    __tablename__ = "access_freezes"
    __table_args__ = (Index("ix_access_freezes_org_id_subject_id", "org_id", "subject_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36))
    subject_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # frozen | lifted
    frozen_by: Mapped[str] = mapped_column(String(200))
    frozen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lifted_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AccessAnomaly(Base):
    """An abnormal grant noticed when it was made (also an ``access.anomaly.<kind>`` audit
    entry)."""

    __tablename__ = "access_anomalies"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    grant_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON, never PI
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
