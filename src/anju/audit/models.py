"""Audit log tables: entries (the leaves), stored perfect-subtree hashes, signed checkpoints, and
the queue of committed entries waiting to be appended."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from anju.db import Base, UTCDateTime


class AuditEntry(Base):
    """One audit event; ``leaf_index`` is its 0-based position in the Merkle tree."""

    __tablename__ = "audit_entries"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    target: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    details: Mapped[str] = mapped_column(Text, nullable=False)  # canonical JSON
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class AuditNode(Base):
    """Hash of the perfect subtree covering leaves [index·2^level, (index+1)·2^level), level ≥ 1."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    node_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class AuditCheckpoint(Base):
    """A signed tree head; ``frontier`` is the compact range at ``tree_size`` (32-byte hashes)."""

    __tablename__ = "audit_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    frontier: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class AuditQueued(Base):
    """An entry committed with its change and not yet in the tree: the sequencer appends queued
    entries in ``id`` order, in batches, and deletes them in the same transaction."""

    __tablename__ = "audit_queue"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    org_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(100), nullable=False)
    target: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    details: Mapped[str] = mapped_column(Text, nullable=False)  # canonical JSON, checked
