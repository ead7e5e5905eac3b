"""The canonical byte encoding of an audit entry: the Merkle leaf data.

Every field, including the entry's leaf index, is in the leaf, so an entry that is altered,
moved to another index, deleted (rows renumbered) or inserted changes the tree.

    "anju-audit-leaf/1" ‖ uint64 index ‖ field × 7
    field = 0x00 (absent) | 0x01 ‖ uint32 length ‖ UTF-8 bytes
    fields: time (RFC 3339 UTC, microseconds, "Z"), org_id, actor, action, target, outcome,
            details (canonical JSON: sorted keys, no spaces, UTF-8)

Integers are big-endian.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from datetime import UTC, datetime

from anju.kit.merkle import leaf_hash

LEAF_MAGIC = b"anju-audit-leaf/1"
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")

DetailValue = str | int | bool | None


def canonical_json(details: Mapping[str, DetailValue] | None) -> str:
    """Details as canonical JSON text (sorted keys, compact, UTF-8, no floats)."""
    return json.dumps(
        dict(details or {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def time_text(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2026-01-01T00:00:00.000000Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _field(value: str | None) -> bytes:
    if value is None:
        return b"\x00"
    raw = value.encode()
    return b"\x01" + _U32.pack(len(raw)) + raw


def leaf_data(
    *,
    index: int,
    recorded_at: datetime,
    org_id: str | None,
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    details: str,
) -> bytes:
    """The leaf bytes of one entry (``details`` already canonical JSON text)."""
    return b"".join(
        (
            LEAF_MAGIC,
            _U64.pack(index),
            _field(time_text(recorded_at)),
            _field(org_id),
            _field(actor),
            _field(action),
            _field(target),
            _field(outcome),
            _field(details),
        )
    )


def entry_leaf_hash(
    *,
    index: int,
    recorded_at: datetime,
    org_id: str | None,
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    details: str,
) -> bytes:
    """SM3(0x00 ‖ leaf data)."""
    return leaf_hash(
        leaf_data(
            index=index,
            recorded_at=recorded_at,
            org_id=org_id,
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            details=details,
        )
    )
