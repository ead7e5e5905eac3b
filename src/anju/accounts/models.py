"""Tables: organisations, accounts, role assignments, sessions, API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, Bytes, UTCDateTime, new_id


class Organisation(Base):
    """A tenant of the platform: a hotel group, a landlord company, a property operator."""

    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Account(Base):
    """A person who signs in. ``org_id`` is NULL only for platform-level staff."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("organisations.id"), nullable=True, index=True
    )
    # Unique across the platform (case-folded), so signing in needs no organisation name.
    login: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | disabled
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(Bytes, nullable=True)
    totp_pending_sealed: Mapped[bytes | None] = mapped_column(Bytes, nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @property
    def has_totp(self) -> bool:
        return self.totp_secret_sealed is not None


class RoleAssignment(Base):
    """One role held by one account, scoped to the account's organisation."""

    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("account_id", "role"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(32))
    org_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("organisations.id"), nullable=True
    )
    granted_by: Mapped[str] = mapped_column(String(64))  # "account:<id>" or "cli"
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginSession(Base):
    """A signed-in session. Only the SM3 hash of its bearer token is stored."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(Bytes, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    idle_seconds: Mapped[int] = mapped_column(Integer)
    second_factor_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApiKey(Base):
    """An integration credential ``anju_<prefix>_<secret>``; only SM3(secret) is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("organisations.id"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(Bytes)
    roles: Mapped[str] = mapped_column(Text)  # space-separated role names (the key's scopes)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
