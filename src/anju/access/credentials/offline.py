"""Offline passcodes on the platform (docs/access.md, "Offline passcodes"; the algorithm:
docs/offline-passcodes.md).

A code is computed for ONE lock from its per-lock PRF (``se_hmac(root key, …)``, the same
HMAC the lock's SE computes), shown once and never stored: the platform keeps its epoch,
serial, kind and window (``access_offline_codes``). Serials are ``start hour × 4 + slot``;
the slot is chosen so that no two codes of a lock and epoch share a serial, revoked or not.

Revocation: online, ``access.revoke {epoch, offline, ekeys}`` carries the lock's *whole*
revocation list of its current epoch (codes ended while they could still open), which the
lock adopts as its list — so expired entries fall off and the list stays bounded; offline, a
clear code typed on the keypad revokes one serial, and an epoch reset (a clear code that
advances the epoch) kills every older code of the lock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from anju.access.context import AccessContext
from anju.access.credentials.delivery import Deliveries
from anju.access.keys import lock_root_key
from anju.access.models import (
    AccessCredential,
    AccessDelivery,
    AccessGrant,
    AccessLockState,
    AccessOfflineCode,
)
from anju.access.rules import AccessConflict, CredentialStatus, DeliveryState
from anju.devices.models import Device
from anju.errors import InvalidInput
from anju.protocol.access import Schedule
from anju.protocol.offline_grants import (
    MAX_ADVANCE,
    MAX_HOURS,
    MAX_WEEKS,
    SLOTS,
    OfflineGrant,
    OfflineKind,
)
from anju.protocol.offline_passcode import (
    issue_clear_code,
    issue_offline_passcode,
    platform_prf,
)

HOUR = timedelta(hours=1)
#: A one-time code's window when none is asked for.
ONE_TIME_DEFAULT = timedelta(hours=24)


@dataclass(frozen=True)
class OfflineRequest:
    """What an operator asks for: the kind and, optionally, the window (aware datetimes)."""

    kind: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True)
class OfflineIssued:
    """A new offline code: the digits (shown once) and what the platform keeps of it."""

    code: str
    meta: AccessOfflineCode


def _floor_hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(at: datetime) -> datetime:
    floor = _floor_hour(at)
    return floor if floor == at else floor + HOUR


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise InvalidInput(
            "时间须带时区偏移 / times need an explicit UTC offset (e.g. +08:00)",
            details={"field": field},
        )
    return value


def parse_kind(kind: str) -> OfflineKind:
    try:
        parsed = OfflineKind(kind)
    except ValueError:
        parsed = OfflineKind.CLEAR
    if parsed is OfflineKind.CLEAR:
        raise InvalidInput(
            f"未知离线密码类型 / unknown offline passcode kind {kind!r}",
            details={"field": "offline_kind", "known": [k.value for k in OfflineKind][:4]},
        )
    return parsed


class OfflineLocks(AccessContext):
    """Offline codes and revocation lists of locks, in one transaction (the caller commits)."""

    def __init__(self, deliveries: Deliveries) -> None:
        super().__init__(deliveries.platform, deliveries.session)
        self.deliveries = deliveries

    # --- issuing ---------------------------------------------------------------------------
    def offline_grant(
        self, grant: AccessGrant, request: OfflineRequest, *, epoch: int, slot: int
    ) -> OfflineGrant:
        """The code's grant: inside the permission's window (whole UTC hours; least privilege:
        a window is cut to the grant's, never widened)."""
        kind = parse_kind(request.kind)
        asked = _aware(request.valid_from, "valid_from")
        # Hour-granular: a code may open from the whole hour the grant starts in.
        start = _floor_hour(self.clock.now()) if asked is None else _ceil_hour(asked)
        start = max(start, _floor_hour(grant.valid_from))
        latest = None if grant.valid_until is None else _floor_hour(grant.valid_until)
        asked_end = _aware(request.valid_until, "valid_until")
        if kind is OfflineKind.PERMANENT:
            if latest is not None:
                raise InvalidInput(
                    "有期限的授权不能签发永久离线密码 / a grant with an end cannot have a "
                    "permanent offline code",
                    details={"field": "offline_kind"},
                )
            return OfflineGrant(kind, start, None, slot=slot, epoch=epoch)
        if kind is OfflineKind.RECURRING:
            return self._recurring(grant, latest, epoch=epoch, slot=slot)
        if asked_end is not None:
            end = _floor_hour(asked_end)
        elif kind is OfflineKind.ONE_TIME:
            end = start + ONE_TIME_DEFAULT
        elif latest is not None:
            end = latest
        else:
            raise InvalidInput(
                "请给出结束时间 / give the code's end (valid_until)",
                details={"field": "valid_until"},
            )
        if latest is not None:
            end = min(end, latest)
        end = min(end, start + MAX_HOURS[kind] * HOUR)
        if end <= start:
            raise InvalidInput(
                "离线密码的时段不在授权期内（整点）/ no whole hour of the grant is left for "
                "the code",
                details={"field": "valid_until"},
            )
        return OfflineGrant(kind, start, end, slot=slot, epoch=epoch)

    def _recurring(
        self, grant: AccessGrant, latest: datetime | None, *, epoch: int, slot: int
    ) -> OfflineGrant:
        if grant.schedule is None:
            raise InvalidInput(
                "周期离线密码需要有排班的授权 / a recurring code needs a grant with a schedule",
                details={"field": "offline_kind"},
            )
        schedule = Schedule.from_json(json.loads(grant.schedule))
        local_now = self.clock.now() + timedelta(minutes=schedule.utc_offset_minutes)
        first_day: date = max(
            local_now.date(),
            (grant.valid_from + timedelta(minutes=schedule.utc_offset_minutes)).date(),
        )
        probe = OfflineGrant.recurring_local(
            first_day=first_day, weeks=1, schedule=schedule, slot=slot, epoch=epoch
        )
        weeks = MAX_WEEKS
        if latest is not None:
            weeks = min(weeks, (latest - probe.valid_from) // timedelta(weeks=1))
        if weeks < 1:
            raise InvalidInput(
                "授权剩余不足一周，无法签发周期离线密码 / less than a week of the grant is left "
                "for a recurring code",
                details={"field": "offline_kind"},
            )
        return OfflineGrant.recurring_local(
            first_day=first_day, weeks=weeks, schedule=schedule, slot=slot, epoch=epoch
        )

    async def issue(
        self,
        credential: AccessCredential,
        grant: AccessGrant,
        lock: Device,
        request: OfflineRequest,
    ) -> OfflineIssued:
        """Compute the code for ``lock`` and keep its metadata (never the code)."""
        prf = platform_prf(lock_root_key(self.platform.keys, lock))
        state = await self.deliveries.lock_state(lock.id)
        probe = self.offline_grant(grant, request, epoch=state.epoch, slot=0)
        first = probe.first_hour * SLOTS
        taken = await self.repo.offline_serials_taken(lock.id, state.epoch, first, first + 3)
        free = [slot for slot in range(SLOTS) if first + slot not in taken]
        if not free:
            raise AccessConflict(
                "此门锁该整点的离线密码已满，请换一个开始时间 / this lock has no free offline "
                "code for that start hour: choose another start",
                details={"reason": "offline_slots_full"},
            )
        offline = self.offline_grant(grant, request, epoch=state.epoch, slot=free[0])
        code = issue_offline_passcode(prf, offline)
        rec = offline.recurrence
        meta = AccessOfflineCode(
            credential_id=credential.id,
            device_id=lock.id,
            epoch=offline.epoch,
            serial=offline.serial,
            kind=offline.kind.value,
            valid_from=offline.valid_from,
            valid_until=offline.valid_until,
            recurrence=None
            if rec is None
            else json.dumps(
                {"weekdays": rec.weekdays, "start_hour": rec.start_hour, "hours": rec.hours}
            ),
        )
        self.repo.add(meta)
        now = self.clock.now()
        self.repo.add(
            AccessDelivery(
                credential_id=credential.id,
                device_id=lock.id,
                org_id=credential.org_id,
                state=DeliveryState.OFFLINE,
                queued_at=now,
                updated_at=now,
            )
        )
        state.offline_serial = offline.serial  # the last serial issued
        state.updated_at = now
        await self.session.flush()
        return OfflineIssued(code, meta)

    # --- revocation ------------------------------------------------------------------------
    async def revoke(
        self, actor: str, credential: AccessCredential, row: AccessDelivery
    ) -> str | None:
        """Revoke an ended offline code on its lock: ``access.revoke`` with its serial (the row
        goes to ``removing`` until the lock's receipt). Returns the clear code that revokes it
        on the keypad of a lock that is offline (None when the code can no longer open)."""
        meta = await self.repo.offline_code(credential.id)
        if meta is None:
            return None
        state = await self.deliveries.lock_state(row.device_id)
        now = self.clock.now()
        if meta.epoch < state.epoch or (meta.valid_until is not None and meta.valid_until <= now):
            row.state, row.code = DeliveryState.REMOVED, "no_longer_valid"
            row.confirmed_at = row.updated_at = now
            return None
        operation = await self.deliveries.push(actor, credential.org_id, row.device_id, state)
        row.state = DeliveryState.REMOVING
        row.command_id = None if operation is None else operation.command_id
        row.code = None if operation is not None else "device_unavailable"
        row.updated_at = now
        device = await self.session.get(Device, row.device_id)
        if device is None or device.root_key_wrapped is None:
            return None
        prf = platform_prf(lock_root_key(self.platform.keys, device))
        return issue_clear_code(prf, epoch=meta.epoch, revoke_serial=meta.serial)

    async def reset_epoch(
        self, actor: str, org_id: str, lock: Device, advance: int = 1
    ) -> tuple[AccessLockState, str, int]:
        """Advance the lock's revocation epoch: every offline code issued before dies (and,
        online, every eKey token of this lock issued before — phones need new tokens).
        (state, the clear code for the keypad, how many live offline codes ended)."""
        if not 1 <= advance <= MAX_ADVANCE:
            raise InvalidInput(f"advance: 1–{MAX_ADVANCE}", details={"field": "advance"})
        prf = platform_prf(lock_root_key(self.platform.keys, lock))
        state = await self.deliveries.lock_state(lock.id)
        old = state.epoch
        code = issue_clear_code(prf, epoch=old, new_epoch=old + advance)
        state.epoch = old + advance
        operation = await self.deliveries.push(actor, org_id, lock.id, state)
        ended = 0
        now = self.clock.now()
        for credential, row in await self.repo.live_offline_on(
            lock.id, old, [CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED]
        ):
            credential.status = CredentialStatus.REVOKED
            credential.end_reason = "epoch_reset"
            credential.ended_at = credential.updated_at = now
            row.state = DeliveryState.REMOVING
            row.command_id = None if operation is None else operation.command_id
            row.updated_at = now
            ended += 1
        await self.record(
            "access.offline.epoch_reset",
            actor=actor,
            org_id=org_id,
            target=f"device:{lock.id}",
            details={"device": lock.id, "from": old, "to": state.epoch, "ended": ended},
        )
        await self.session.flush()
        return state, code, ended
