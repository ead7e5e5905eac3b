"""Signed lock records in the event batch's transaction: verify, then hand to their domain.

:class:`RecordHook` is called by :class:`anju.gateway.events.EventBatcher` with the rows a batch
*actually inserted* (the ON CONFLICT duplicates are not), in the same transaction — so each
record is used exactly once, and a failing handler rolls the whole batch back to be retried.

Rows of a kind in :data:`anju.protocol.access.SIGNED_EVENTS` are verified with the device's
registry public key (:func:`anju.protocol.access.verify_record`). A bad signature, a record
naming another device or a malformed record is not used: it is counted
(``records_rejected``), kept as a device operation record and audited; the raw event stays.
Verified records go to the handler of their kind in :data:`RECORD_HANDLERS`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.credentials.receipts import apply_receipt
from anju.alarms.service import AlarmService
from anju.audit import AuditLog
from anju.devices.models import Device
from anju.devices.service import DeviceService
from anju.gateway.models import DeviceEvent
from anju.kit.crypto import SM2PublicKey
from anju.platform import Platform
from anju.protocol.access import (
    ALARM_CLEARED_EVENT,
    ALARM_RAISED_EVENT,
    RECEIPT_EVENT,
    SIGNED_EVENTS,
    UNLOCK_EVENT,
    AlarmType,
    verify_record,
)
from anju.protocol.errors import ProtocolError
from anju.unlocks.rules import RecordRefused
from anju.unlocks.service import UnlockService

logger = logging.getLogger("anju.gateway")
REJECTED_ACTION = "devices.security.bad_record"


class RecordHandler(Protocol):
    """Uses one verified record (idempotent; flushes, never commits)."""

    def __call__(
        self,
        platform: Platform,
        session: AsyncSession,
        *,
        device_id: str,
        event_id: str,
        record: dict[str, Any],
    ) -> Awaitable[None]: ...


class StoredEvent(Protocol):
    """A stored device event (``anju.gateway.events.EventRow``)."""

    @property
    def device_id(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def data(self) -> str: ...


async def _device(session: AsyncSession, device_id: str) -> Device:
    device = await session.get(Device, device_id)
    if device is None:  # the hook loaded it: cannot vanish within the transaction
        raise LookupError(device_id)
    return device


async def store_unlock(
    platform: Platform,
    session: AsyncSession,
    *,
    device_id: str,
    event_id: str,
    record: dict[str, Any],
) -> None:
    """``access.unlock`` → an unlock record (and repeated-denial alarms)."""
    device = await _device(session, device_id)
    await UnlockService(platform, session).record_attempt(device, event_id, record)


def _alarm_type(record: dict[str, Any]) -> str:
    alarm = record["rec"].get("alarm")
    if alarm not in {a.value for a in AlarmType}:
        raise RecordRefused("alarm record: unknown alarm")
    detail = record["rec"].get("detail")
    if detail is not None and not isinstance(detail, dict):
        raise RecordRefused("alarm record: detail is an object or null")
    return str(alarm)


def _alarm_details(record: dict[str, Any]) -> dict[str, str | int | bool | None]:
    detail = record["rec"].get("detail") or {}
    return {
        str(k)[:32]: v
        for k, v in detail.items()
        if v is None or (isinstance(v, str | int | bool) and len(str(v)) <= 64)
    }


async def raise_lock_alarm(
    platform: Platform,
    session: AsyncSession,
    *,
    device_id: str,
    event_id: str,
    record: dict[str, Any],
) -> None:
    """``alarm.raised`` → an alarm of the lock's kind (a repeat of an open one is counted)."""
    kind = _alarm_type(record)
    device = await _device(session, device_id)
    await AlarmService(platform, session).raise_alarm(
        org_id=device.org_id,
        kind=kind,
        source="lock",
        device=device,
        details=_alarm_details(record),
    )


async def clear_lock_alarm(
    platform: Platform,
    session: AsyncSession,
    *,
    device_id: str,
    event_id: str,
    record: dict[str, Any],
) -> None:
    """``alarm.cleared`` → the lock's open alarms of that kind are cleared."""
    kind = _alarm_type(record)
    await AlarmService(platform, session).clear_from_lock(await _device(session, device_id), kind)


#: Handlers by event kind. ``access.receipt`` is the access domain's
#: (``anju.access.credentials.receipts.apply_receipt``); until it is registered, verified
#: receipts are only counted.
async def apply_lock_receipt(
    platform: Platform,
    session: AsyncSession,
    *,
    device_id: str,
    event_id: str,
    record: dict[str, Any],
) -> None:
    """An ``access.receipt``: the lock confirms a credential or lock-wide access command."""
    await apply_receipt(
        platform, session, device_id=device_id, event_id=event_id, record=record["rec"]
    )


RECORD_HANDLERS: dict[str, RecordHandler] = {
    RECEIPT_EVENT: apply_lock_receipt,
    UNLOCK_EVENT: store_unlock,
    ALARM_RAISED_EVENT: raise_lock_alarm,
    ALARM_CLEARED_EVENT: clear_lock_alarm,
}


class RecordHook:
    """Verifies and dispatches the signed records of one stored batch (module docstring)."""

    def __init__(
        self, platform: Platform, *, handlers: dict[str, RecordHandler] | None = None
    ) -> None:
        self.platform = platform
        self.handlers = RECORD_HANDLERS if handlers is None else handlers
        self._audit = AuditLog(platform)

    async def __call__(self, session: AsyncSession, rows: Sequence[StoredEvent]) -> tuple[int, int]:
        """Verify and dispatch; (records verified, records refused) — counted by the caller
        once the transaction commits."""
        verified = refused = 0
        signed = [r for r in rows if r.kind in SIGNED_EVENTS]
        if not signed:
            return verified, refused
        ids = {r.device_id for r in signed}
        devices = {
            d.id: d
            for d in (await session.execute(select(Device).where(Device.id.in_(ids)))).scalars()
        }
        for row in signed:
            device = devices.get(row.device_id)
            if device is None:
                continue  # events of an unknown device are kept raw; nothing to verify against
            try:
                data = json.loads(row.data)
                rec = verify_record(
                    data, device_id=device.id, public_key=SM2PublicKey(device.public_key)
                )
                handler = self.handlers.get(row.kind)
                if handler is not None:
                    # A savepoint: a refused record's partial writes go, the batch stays.
                    async with session.begin_nested():
                        await handler(
                            self.platform,
                            session,
                            device_id=device.id,
                            event_id=row.event_id,
                            record={"rec": rec, "sig": data["sig"]},
                        )
            except (ProtocolError, RecordRefused, ValueError) as exc:
                code = getattr(exc, "code", "malformed")
                await self._reject(session, device, row, code)
                refused += 1
                continue
            verified += 1
        return verified, refused

    async def _reject(
        self, session: AsyncSession, device: Device, row: StoredEvent, code: str
    ) -> None:
        logger.warning("device %s: record %s refused (%s)", device.id, row.event_id, code)
        details: dict[str, str | int | bool | None] = {
            "event": row.event_id,
            "kind": row.kind,
            "reason": code,
        }
        await DeviceService(self.platform, session).record_operation(
            device, actor="gateway", operation="record.refused", outcome="failure", details=details
        )
        await self._audit.record(
            session,
            action=REJECTED_ACTION,
            actor="gateway",
            org_id=device.org_id,
            target=f"device:{device.id}",
            outcome="failure",
            details=details,
        )


async def purge_unlock_events(session: AsyncSession, cutoff: datetime) -> int:
    """Delete raw ``access.unlock`` device events received before ``cutoff`` (retention)."""
    result = await session.execute(
        delete(DeviceEvent).where(
            DeviceEvent.kind == UNLOCK_EVENT, DeviceEvent.received_at < cutoff
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
