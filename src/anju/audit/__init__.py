"""Tamper-evident audit log: SM3 Merkle tree (RFC 9162), SM2-signed checkpoints, verifier."""

from anju.audit.service import AuditLog, NewEntry, SignedCheckpoint

__all__ = ["AuditLog", "NewEntry", "SignedCheckpoint"]
