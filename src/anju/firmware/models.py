"""Tables: firmware packages, rollouts, and each device's progress in a rollout.

A package row keeps the signed manifest, signature and signer certificate exactly as uploaded
(the platform re-sends them to devices, which verify them themselves) and the image bytes
(``deferred``: listing packages never loads images). ``version_key`` is the version in a
sortable, normalised form ("1.2" and "1.2.0" are the same version of a product).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, Bytes, UTCDateTime


class FirmwarePackage(Base):
    """One signed firmware release of one product."""

    __tablename__ = "firmware_packages"
    # One package per version of a product (compared in normalised form).
    __table_args__ = (UniqueConstraint("product_key", "version_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    product_key: Mapped[str] = mapped_column(String(64), ForeignKey("device_products.product_key"))
    version: Mapped[str] = mapped_column(String(32))
    version_key: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sm3: Mapped[str] = mapped_column(String(64))  # hex of the image digest
    min_from: Mapped[str | None] = mapped_column(String(32), nullable=True)
    manifest: Mapped[bytes] = mapped_column(Bytes)  # the signed canonical JSON bytes
    signature: Mapped[bytes] = mapped_column(Bytes)
    signer_certificate: Mapped[bytes] = mapped_column(Bytes)
    signer: Mapped[str] = mapped_column(String(64))  # the certificate's subject
    signer_not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    image: Mapped[bytes] = mapped_column(Bytes, deferred=True, deferred_raiseload=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the manifest's time
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FirmwareRollout(Base):
    """A staged rollout of one package to a fixed set of devices."""

    __tablename__ = "firmware_rollouts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    package_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("firmware_packages.id"), index=True
    )
    # The organisation whose devices it targets; NULL: the platform operator's, across orgs.
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    stages: Mapped[str] = mapped_column(Text)  # JSON list of cumulative percentages
    current_stage: Mapped[int] = mapped_column(Integer, default=0)  # 0: not started
    success_threshold_pct: Mapped[int] = mapped_column(Integer)
    failure_threshold_pct: Mapped[int] = mapped_column(Integer)
    # Failures an operator accepted by resuming: they no longer count against the threshold.
    accepted_failures: Mapped[int] = mapped_column(Integer, default=0)
    command_ttl_seconds: Mapped[int] = mapped_column(Integer)
    selector: Mapped[str] = mapped_column(Text)  # JSON: how the devices were chosen
    paused_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class FirmwareRolloutDevice(Base):
    """One device of a rollout: its stage, the command that carried the offer, its state."""

    __tablename__ = "firmware_rollout_devices"
    __table_args__ = (
        PrimaryKeyConstraint("rollout_id", "device_id"),
        Index("ix_firmware_rollout_devices_rollout_id_state", "rollout_id", "state"),
    )

    rollout_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("firmware_rollouts.id", ondelete="CASCADE")
    )
    device_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)  # random order fixed at creation
    stage: Mapped[int] = mapped_column(Integer)  # 1-based
    state: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    command_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    from_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
