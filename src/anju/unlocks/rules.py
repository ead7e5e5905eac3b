"""The fields of a verified ``access.unlock`` record, checked before they are stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anju.errors import InvalidInput
from anju.protocol.access import CREDENTIAL_ID, REASONS, SUBJECT, UnlockMethod
from anju.protocol.messages import MAX_INT

RESULTS = ("granted", "denied")


class RecordRefused(InvalidInput):
    """A correctly signed record whose fields do not follow the format: stored raw, not used."""

    code = "record_malformed"


@dataclass(frozen=True)
class UnlockFields:
    at_ms: int
    method: str
    result: str
    reason: str | None
    credential_id: str | None
    subject: str | None
    serial: int | None


def _optional(value: Any, check: Any, what: str) -> Any:
    if value is None:
        return None
    if not check(value):
        raise RecordRefused(f"unlock record: bad {what}")
    return value


def parse_unlock(rec: dict[str, Any]) -> UnlockFields:
    """The checked fields of an unlock record (``record_malformed`` otherwise)."""
    at = rec.get("at")
    if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at <= MAX_INT:
        raise RecordRefused("unlock record: bad at")
    method = rec.get("method")
    if method not in {m.value for m in UnlockMethod}:
        raise RecordRefused("unlock record: bad method")
    result = rec.get("result")
    if result not in RESULTS:
        raise RecordRefused("unlock record: bad result")
    return UnlockFields(
        at_ms=at,
        method=str(method),
        result=str(result),
        reason=_optional(rec.get("reason"), lambda v: v in REASONS, "reason"),
        credential_id=_optional(
            rec.get("cred"), lambda v: isinstance(v, str) and CREDENTIAL_ID.fullmatch(v), "cred"
        ),
        subject=_optional(
            rec.get("subject"), lambda v: isinstance(v, str) and SUBJECT.fullmatch(v), "subject"
        ),
        serial=_optional(
            rec.get("serial"),
            lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_INT,
            "serial",
        ),
    )
