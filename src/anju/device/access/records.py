"""Signed lock records (``access.unlock``, ``access.receipt``, ``alarm.*``; docs/protocol.md).

Each record is signed by the SE's device key (:func:`anju.protocol.access.sign_record`) and
queued in the lock's sealed event buffer, which uploads it at least once; the platform verifies
the signature against the registry's public key of this device before it uses the record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anju.protocol.access import (
    ALARM_CLEARED_EVENT,
    ALARM_RAISED_EVENT,
    RECEIPT_EVENT,
    UNLOCK_EVENT,
    AlarmType,
    UnlockMethod,
    sign_record,
)


class RecordSigner:
    """Builds, signs and queues the lock's records; each call returns the event id."""

    def __init__(
        self,
        device_id: str,
        *,
        sign: Callable[[bytes], bytes],
        record_event: Callable[[str, dict[str, Any]], str],
        now_ms: Callable[[], int],
    ) -> None:
        self._device = device_id
        self._sign = sign
        self._record_event = record_event
        self._now = now_ms

    def _emit(self, kind: str, fields: dict[str, Any]) -> str:
        record = {"dev": self._device, "at": self._now(), **fields}
        return self._record_event(kind, sign_record(record, sign=self._sign))

    def unlock(
        self,
        method: UnlockMethod,
        *,
        granted: bool,
        reason: str | None = None,
        cred: str | None = None,
        subject: str | None = None,
        serial: int | None = None,
    ) -> str:
        """One unlock attempt, granted or denied."""
        return self._emit(
            UNLOCK_EVENT,
            {
                "method": method.value,
                "result": "granted" if granted else "denied",
                "reason": reason,
                "cred": cred,
                "subject": subject,
                "serial": serial,
            },
        )

    def receipt(
        self,
        command_id: str,
        op: str,
        state: str,
        *,
        cred: str | None = None,
        subject: str | None = None,
        code: str | None = None,
    ) -> str:
        """The lock's confirmation of an access command it executed."""
        return self._emit(
            RECEIPT_EVENT,
            {
                "cmd": command_id,
                "op": op,
                "cred": cred,
                "subject": subject,
                "state": state,
                "code": code,
            },
        )

    def alarm(self, alarm: AlarmType, *, raised: bool, detail: dict[str, Any] | None) -> str:
        """An alarm raised or cleared."""
        kind = ALARM_RAISED_EVENT if raised else ALARM_CLEARED_EVENT
        return self._emit(kind, {"alarm": alarm.value, "detail": detail})
