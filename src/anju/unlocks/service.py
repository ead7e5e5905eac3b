"""Unlock records: stored from verified lock records, searched (audited, masked), re-verified,
kept for the retention period; repeated denials raise platform alarms (L17)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.alarms.rules import REPEATED_FAILURES, SITE_REPEATED_FAILURES
from anju.alarms.service import AlarmService
from anju.audit import AuditLog
from anju.db import new_id
from anju.devices.models import Device
from anju.errors import NotFound
from anju.kit.crypto import SM2PublicKey
from anju.kit.masking import mask_generic
from anju.platform import Platform
from anju.protocol.access import verify_record
from anju.protocol.errors import ProtocolError
from anju.protocol.messages import canonical_json
from anju.unlocks.models import UnlockRecord
from anju.unlocks.repository import UnlockFilter, UnlocksRepository
from anju.unlocks.rules import parse_unlock
from anju.webhooks.service import WebhookService


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class Verification:
    """An auditor's re-check of a stored record against the device's registry key."""

    record_id: str
    device_id: str
    valid: bool
    reason: str | None


def record_view(record: UnlockRecord, *, reveal_subject: bool) -> dict[str, Any]:
    """What a reader sees of a record: the subject masked unless they may read PI."""
    subject = record.subject
    return {
        "id": record.id,
        "device_id": record.device_id,
        "event_id": record.event_id,
        "place_kind": record.place_kind,
        "place_ref": record.place_ref,
        "subject": subject if reveal_subject or subject is None else mask_generic(subject),
        "credential_id": record.credential_id,
        "offline_serial": record.offline_serial,
        "method": record.method,
        "result": record.result,
        "reason": record.reason,
        "at": record.at,
        "received_at": record.received_at,
    }


class UnlockService:
    """Unlock records of one transaction (the caller commits)."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self.platform = platform
        self.session = session
        self.clock = platform.clock
        self.repo = UnlocksRepository(session)
        self.audit = AuditLog(platform)

    # --- from the gateway ------------------------------------------------------------------
    async def record_attempt(
        self, device: Device, event_id: str, signed: dict[str, Any]
    ) -> UnlockRecord:
        """Store one verified ``access.unlock`` record (``signed`` = {rec, sig}) at the door
        the device is bound to now; check for repeated denials."""
        rec: dict[str, Any] = signed["rec"]
        fields = parse_unlock(rec)
        record = UnlockRecord(
            id=new_id(),
            org_id=device.org_id,
            device_id=device.id,
            event_id=event_id,
            place_kind=device.place_kind,
            place_ref=device.place_ref,
            subject=fields.subject,
            credential_id=fields.credential_id,
            offline_serial=fields.serial,
            method=fields.method,
            result=fields.result,
            reason=fields.reason,
            at=ms_to_datetime(fields.at_ms),
            received_at=self.clock.now(),
            record=canonical_json(rec).decode(),
            signature=str(signed["sig"]),
        )
        self.session.add(record)
        await self.session.flush()
        await WebhookService(self.platform, self.session).emit(
            device.org_id, "unlock.recorded", _webhook_data(record)
        )
        if record.result == "denied":
            await self._check_repeated_denials(device, record)
        return record

    async def _check_repeated_denials(self, device: Device, record: UnlockRecord) -> None:
        settings = self.platform.settings
        since = record.at - timedelta(seconds=settings.failure_alarm_window_seconds)
        alarms = AlarmService(self.platform, self.session)
        details = {"window_seconds": settings.failure_alarm_window_seconds}
        at_lock = await self.repo.denials_between(device.org_id, since, record.at, device.id)
        if at_lock >= settings.failure_alarm_threshold:
            await alarms.raise_alarm(
                org_id=device.org_id,
                kind=REPEATED_FAILURES,
                source="platform",
                device=device,
                details={**details, "denials": at_lock},
            )
        if device.org_id is None:
            return
        on_site = await self.repo.denials_between(device.org_id, since, record.at)
        if on_site >= settings.site_failure_alarm_threshold:
            await alarms.raise_alarm(
                org_id=device.org_id,
                kind=SITE_REPEATED_FAILURES,
                source="platform",
                details={**details, "denials": on_site},
            )

    # --- readers ---------------------------------------------------------------------------
    async def search(
        self, principal: Principal, where: UnlockFilter, *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """Records matching ``where``, newest first; the read is audited."""
        AccountService.require(principal, Cap.RECORDS_READ)
        rows = await self.repo.search(principal.org_id, where, limit=limit, offset=offset)
        await self.audit.record(
            self.session,
            action="unlocks.records.read",
            actor=principal.actor,
            org_id=principal.org_id,
            target="unlock_records",
            details={"filters": ",".join(where.names()), "returned": len(rows)},
        )
        reveal = principal.has(Cap.PI_READ)
        return [record_view(r, reveal_subject=reveal) for r in rows]

    async def verify(self, principal: Principal, record_id: str) -> Verification:
        """Re-verify a stored record's signature with the device's public key (audited)."""
        AccountService.require(principal, Cap.RECORDS_READ)
        record = await self.repo.record(record_id)
        if record is None or (principal.org_id is not None and record.org_id != principal.org_id):
            raise NotFound("开锁记录不存在 / no such unlock record")
        device = await self.session.get(Device, record.device_id)
        reason: str | None = None
        if device is None:
            reason = "unknown_device"
        else:
            signed = {"rec": json.loads(record.record), "sig": record.signature}
            try:
                verify_record(
                    signed, device_id=device.id, public_key=SM2PublicKey(device.public_key)
                )
            except ProtocolError as exc:
                reason = exc.code
        await self.audit.record(
            self.session,
            action="unlocks.records.verified",
            actor=principal.actor,
            org_id=record.org_id,
            target=f"unlock_record:{record.id}",
            outcome="success" if reason is None else "failure",
            details={"reason": reason},
        )
        return Verification(record.id, record.device_id, reason is None, reason)


def _webhook_data(record: UnlockRecord) -> dict[str, Any]:
    return {
        "record_id": record.id,
        "device_id": record.device_id,
        "place_kind": record.place_kind,
        "place_ref": record.place_ref,
        "subject": mask_generic(record.subject) if record.subject else None,
        "credential_id": record.credential_id,
        "method": record.method,
        "result": record.result,
        "reason": record.reason,
        "at": record.at.isoformat(),
    }
