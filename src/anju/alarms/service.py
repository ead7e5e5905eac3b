"""The alarm lifecycle: raise (or count a repeat), acknowledge, clear — audited, org-isolated.

Every change writes an :class:`AlarmChange` row and the matching webhook events in the same
transaction, and wakes this process's live streams after commit (docs/records.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.alarms.models import Alarm, AlarmChange
from anju.alarms.repository import AlarmFilter, AlarmsRepository
from anju.alarms.rules import (
    KINDS,
    OPEN,
    AlarmStateConflict,
    AlarmStatus,
    check_note,
    check_subject,
    kind_info,
)
from anju.audit import AuditLog
from anju.db import new_id
from anju.devices.models import Device
from anju.errors import NotFound
from anju.kit.masking import mask_generic
from anju.kit.wakeup import Wakeup
from anju.platform import Platform
from anju.webhooks.service import WebhookService

#: Wakes this process's live alarm streams after a commit that changed an alarm.
ALARMS_CHANGED = Wakeup("alarms")
Details = Mapping[str, str | int | bool | None]


def not_found() -> NotFound:
    return NotFound("告警不存在 / no such alarm")


def alarm_summary(alarm: Alarm, *, reveal_subject: bool = False) -> dict[str, Any]:
    """What an operator, the live stream and webhooks see of an alarm (subject masked)."""
    info = KINDS.get(alarm.kind)
    subject = alarm.subject
    return {
        "id": alarm.id,
        "kind": alarm.kind,
        "source": alarm.source,
        "severity": alarm.severity,
        "status": alarm.status,
        "title_zh": info.title_zh if info else alarm.kind,
        "title_en": info.title_en if info else alarm.kind,
        "device_id": alarm.device_id,
        "place_kind": alarm.place_kind,
        "place_ref": alarm.place_ref,
        "subject": subject if reveal_subject or subject is None else mask_generic(subject),
        "count": alarm.count,
        "details": json.loads(alarm.details),
        "raised_at": alarm.raised_at.isoformat(),
        "last_raised_at": alarm.last_raised_at.isoformat(),
        "acknowledged_by": alarm.acknowledged_by,
        "acknowledged_at": alarm.acknowledged_at.isoformat() if alarm.acknowledged_at else None,
        "cleared_by": alarm.cleared_by,
        "cleared_at": alarm.cleared_at.isoformat() if alarm.cleared_at else None,
    }


class AlarmService:
    """Alarms of one transaction (the caller commits)."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self.platform = platform
        self.session = session
        self.clock = platform.clock
        self.repo = AlarmsRepository(session)
        self.audit = AuditLog(platform)

    # --- raising and clearing (locks, the platform) ----------------------------------------
    async def raise_alarm(
        self,
        *,
        org_id: str | None,
        kind: str,
        source: str,
        device: Device | None = None,
        subject: str | None = None,
        details: Details | None = None,
    ) -> Alarm:
        """Open an alarm, or count a repeat of the same open one (same org, kind, device,
        subject)."""
        info = kind_info(kind)
        check_subject(subject)
        device_id = device.id if device is not None else None
        now = self.clock.now()
        alarm = await self.repo.open_alarm(org_id, kind, device_id, subject)
        if alarm is not None:
            alarm.count += 1
            alarm.last_raised_at = now
            await self._changed(alarm, "repeated")
            return alarm
        alarm = Alarm(
            id=new_id(),
            org_id=org_id,
            kind=kind,
            source=source,
            severity=info.severity.value,
            status=AlarmStatus.ACTIVE,
            device_id=device_id,
            place_kind=device.place_kind if device is not None else None,
            place_ref=device.place_ref if device is not None else None,
            subject=subject,
            details=json.dumps(dict(details or {}), sort_keys=True),
            count=1,
            raised_at=now,
            last_raised_at=now,
        )
        self.session.add(alarm)
        await self._changed(alarm, "raised")
        await self.audit.record(
            self.session,
            action="alarms.raised",
            actor=f"device:{device_id}" if source == "lock" and device_id else "system",
            org_id=org_id,
            target=f"alarm:{alarm.id}",
            details={"kind": kind, "severity": alarm.severity, "device": device_id},
        )
        return alarm

    async def clear_from_lock(self, device: Device, kind: str) -> list[Alarm]:
        """The lock says the condition is over: clear its open alarms of ``kind``."""
        cleared = []
        for alarm in await self.repo.open_of_device(device.id, kind):
            await self._clear(alarm, f"device:{device.id}", None)
            cleared.append(alarm)
        return cleared

    # --- operators -------------------------------------------------------------------------
    def _scope(self, principal: Principal) -> str | None:
        AccountService.require(principal, Cap.ALARMS_MANAGE)
        return principal.org_id

    async def _owned(self, principal: Principal, alarm_id: str, *, lock: bool) -> Alarm:
        org_id = self._scope(principal)
        alarm = await self.repo.alarm(alarm_id, for_update=lock)
        if alarm is None or (org_id is not None and alarm.org_id != org_id):
            raise not_found()
        return alarm

    async def alarms(
        self, principal: Principal, where: AlarmFilter, *, limit: int, offset: int
    ) -> Sequence[Alarm]:
        return await self.repo.alarms(self._scope(principal), where, limit=limit, offset=offset)

    async def alarm(self, principal: Principal, alarm_id: str) -> Alarm:
        return await self._owned(principal, alarm_id, lock=False)

    async def acknowledge(self, principal: Principal, alarm_id: str, note: str | None) -> Alarm:
        """An operator takes the alarm on: active → acknowledged (who, when, note)."""
        check_note(note)
        alarm = await self._owned(principal, alarm_id, lock=True)
        if alarm.status != AlarmStatus.ACTIVE:
            raise AlarmStateConflict(
                f"告警状态为 {alarm.status}，不能确认 / a {alarm.status} alarm cannot be "
                "acknowledged",
                details={"status": alarm.status},
            )
        alarm.status = AlarmStatus.ACKNOWLEDGED
        alarm.acknowledged_by = principal.actor
        alarm.acknowledged_at = self.clock.now()
        alarm.acknowledge_note = note
        await self._changed(alarm, "acknowledged")
        await self._audit_operator(principal, alarm, "alarms.acknowledged", note)
        return alarm

    async def clear(self, principal: Principal, alarm_id: str, note: str | None) -> Alarm:
        """An operator closes the alarm: active or acknowledged → cleared."""
        check_note(note)
        alarm = await self._owned(principal, alarm_id, lock=True)
        if alarm.status not in OPEN:
            raise AlarmStateConflict(
                "告警已清除 / the alarm is already cleared", details={"status": alarm.status}
            )
        await self._clear(alarm, principal.actor, note)
        await self._audit_operator(principal, alarm, "alarms.cleared", note)
        return alarm

    async def _audit_operator(
        self, principal: Principal, alarm: Alarm, action: str, note: str | None
    ) -> None:
        await self.audit.record(
            self.session,
            action=action,
            actor=principal.actor,
            org_id=alarm.org_id,
            target=f"alarm:{alarm.id}",
            details={"kind": alarm.kind, "with_note": note is not None},
        )

    # --- the feed --------------------------------------------------------------------------
    async def last_change_id(self) -> int:
        return await self.repo.last_change_id()

    async def changes_after(
        self, principal: Principal, after: int, limit: int = 100
    ) -> Sequence[tuple[AlarmChange, Alarm]]:
        """Changes after ``after`` in the caller's organisation, oldest first."""
        return await self.repo.changes_after(self._scope(principal), after, limit)

    # --- plumbing --------------------------------------------------------------------------
    async def _clear(self, alarm: Alarm, actor: str, note: str | None) -> None:
        alarm.status = AlarmStatus.CLEARED
        alarm.cleared_by = actor
        alarm.cleared_at = self.clock.now()
        alarm.clear_note = note
        await self._changed(alarm, "cleared")

    async def _changed(self, alarm: Alarm, change: str) -> None:
        await self.session.flush()
        self.session.add(
            AlarmChange(alarm_id=alarm.id, org_id=alarm.org_id, change=change, at=self.clock.now())
        )
        await self.session.flush()
        await WebhookService(self.platform, self.session).emit(
            alarm.org_id, f"alarm.{change}", alarm_summary(alarm)
        )
        ALARMS_CHANGED.after_commit(self.session)


async def raise_platform_alarm(
    platform: Platform,
    session: AsyncSession,
    *,
    org_id: str | None,
    kind: str,
    device_id: str | None = None,
    subject: str | None = None,
    details: Details | None = None,
) -> Alarm:
    """Raise a platform alarm (e.g. an abnormal grant) in the caller's transaction."""
    device = await session.get(Device, device_id) if device_id is not None else None
    if device_id is not None and device is None:
        raise NotFound("设备不存在 / no such device")
    return await AlarmService(platform, session).raise_alarm(
        org_id=org_id, kind=kind, source="platform", device=device, subject=subject, details=details
    )
