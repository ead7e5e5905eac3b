"""Tables: device products, devices, device operation records, registration nonces.

Device ids and secure-element ids are 16 random bytes written as 32 lowercase hex characters.
The device root key is stored only wrapped by the master key (``root_key_wrapped``) and is set
to NULL when the device is decommissioned (crypto-shredding).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, Bytes, UTCDateTime


class DeviceProduct(Base):
    """A product (device model) of a maker; holds the 一型一密 product secret when enabled."""

    __tablename__ = "device_products"

    product_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_type: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    dynamic_registration: Mapped[bool] = mapped_column(Boolean, default=False)
    # Wrapped by the master key (AAD binds the product key); NULL when never enabled.
    product_secret_wrapped: Mapped[bytes | None] = mapped_column(Bytes, nullable=True)
    # Rate limit of dynamic registration: failures counted in a window.
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    failure_window_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Device(Base):
    """One physical device: identity, lifecycle status, owner, place, certificate, state."""

    __tablename__ = "devices"
    # A place holds one device per organisation while bound (NULLs never collide).
    __table_args__ = (UniqueConstraint("org_id", "place_kind", "place_ref"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # device id, 32 hex
    device_type: Mapped[str] = mapped_column(String(32))
    product_key: Mapped[str] = mapped_column(
        String(64), ForeignKey("device_products.product_key"), index=True
    )
    se_id: Mapped[str] = mapped_column(String(32), unique=True)
    public_key: Mapped[bytes] = mapped_column(Bytes)  # SM2 x‖y (64 bytes)
    status: Mapped[str] = mapped_column(String(16), index=True)
    provisioning: Mapped[str] = mapped_column(String(16))  # "factory" | "dynamic"
    org_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("organisations.id"), nullable=True, index=True
    )
    place_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    place_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    certificate: Mapped[bytes] = mapped_column(Bytes)
    cert_serial: Mapped[str] = mapped_column(String(32), unique=True)  # hex of 16 bytes
    cert_not_after: Mapped[datetime] = mapped_column(UTCDateTime())
    root_key_wrapped: Mapped[bytes | None] = mapped_column(Bytes, nullable=True)
    claim_failures: Mapped[int] = mapped_column(Integer, default=0)
    firmware_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    battery_pct: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signal_dbm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attributes: Mapped[str] = mapped_column(Text, default="{}")  # operator-set, JSON object
    reported: Mapped[str] = mapped_column(Text, default="{}")  # device-reported, JSON object
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeviceOperation(Base):
    """An operation record of a device (R11): who did what to it, when, and the outcome."""

    __tablename__ = "device_operations"

    # A sequence, not a UUID: records of one device are listed in the order they happened.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    # The organisation the device belonged to when it happened (records stay with that org).
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON object, never secrets or PI


class RegistrationNonce(Base):
    """A dynamic-registration nonce seen recently (replay cache shared by every process)."""

    __tablename__ = "device_registration_nonces"
    __table_args__ = (PrimaryKeyConstraint("product_key", "nonce"),)

    product_key: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(32))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
