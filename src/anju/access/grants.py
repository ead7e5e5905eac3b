"""Permissions: who may open which doors, when (docs/access.md, "Grants").

A grant names a subject (pseudonymous id) and a person type, a door set (explicit locks, or
every lock of a place kind and/or place reference of the organisation, resolved when granted),
an absolute window, an optional recurring schedule and an optional use count. The person type
bounds the grant (least privilege, :data:`anju.access.rules.POLICIES`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from anju.access.anomalies import DEFAULT_UTC_OFFSET_MINUTES, AnomalyDetector
from anju.access.context import AccessContext, Details
from anju.access.credentials.delivery import Deliveries
from anju.access.credentials.service import CredentialService
from anju.access.models import AccessGrant
from anju.access.rules import (
    MAX_DOORS,
    POLICIES,
    CredentialStatus,
    GrantStatus,
    check_subject,
    parse_person_type,
)
from anju.db import new_id
from anju.devices.commands.rules import COMMANDABLE
from anju.devices.lifecycle import PLACE_KINDS
from anju.errors import InvalidInput, NotFound
from anju.protocol.access import WIPE_COMMAND, Schedule


def grant_not_found() -> NotFound:
    return NotFound("授权不存在 / no such grant")


#: Active grants of one person in one organisation considered when deciding what to wipe.
MAX_GRANTS_PER_SUBJECT = 1000


@dataclass(frozen=True)
class DoorSelector:
    """Which doors: explicit lock ids, or every lock of a place kind and/or reference."""

    device_ids: tuple[str, ...] | None = None
    place_kind: str | None = None
    place_ref: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "devices": None if self.device_ids is None else list(self.device_ids),
            "place_kind": self.place_kind,
            "place_ref": self.place_ref,
        }


@dataclass(frozen=True)
class GrantSpec:
    subject_id: str
    person_type: str
    doors: DoorSelector
    valid_until: datetime | None = None
    valid_from: datetime | None = None  # None: now
    schedule: Schedule | None = None
    uses: int | None = None


class GrantService(AccessContext):
    """Grants of one transaction (the caller commits)."""

    async def create(
        self, actor: str, org_id: str, spec: GrantSpec, *, actor_subject: str | None = None
    ) -> tuple[AccessGrant, list[str]]:
        """A new grant within the person type's limits; (grant, anomaly kinds found)."""
        subject = check_subject(spec.subject_id)
        person_type = parse_person_type(spec.person_type)
        policy = POLICIES[person_type]
        now = self.clock.now()
        start = spec.valid_from or now
        end = spec.valid_until
        if end is None and policy.end_required:
            raise InvalidInput(
                f"{person_type} 授权必须有结束时间 / a {person_type} grant needs an end",
                details={"field": "valid_until"},
            )
        if end is not None and (end <= start or end <= now):
            raise InvalidInput(
                "结束时间须晚于开始时间和当前时间 / the end must be after the start and now",
                details={"field": "valid_until"},
            )
        if end is not None and policy.longest is not None and end - start > policy.longest:
            raise InvalidInput(
                f"{person_type} 授权最长 {policy.longest.days} 天 / a {person_type} grant lasts "
                f"at most {policy.longest.days} days",
                details={"field": "valid_until", "max_days": policy.longest.days},
            )
        if policy.schedule_required and spec.schedule is None:
            raise InvalidInput(
                f"{person_type} 授权须有排班时段 / a {person_type} grant needs a schedule",
                details={"field": "schedule"},
            )
        if spec.uses is not None and not 1 <= spec.uses <= 1_000_000:
            raise InvalidInput("uses: 1–1000000", details={"field": "uses"})
        devices = await self._doors(org_id, spec.doors)
        grant = AccessGrant(
            id=new_id(),
            org_id=org_id,
            subject_id=subject,
            person_type=person_type,
            selector=json.dumps(spec.doors.to_json(), sort_keys=True),
            device_ids=json.dumps(devices),
            valid_from=start,
            valid_until=end,
            schedule=None if spec.schedule is None else json.dumps(spec.schedule.to_json()),
            uses=spec.uses,
            status=GrantStatus.ACTIVE,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        self.repo.add(grant)
        await self.session.flush()
        await self.record(
            "access.grant.created",
            actor=actor,
            org_id=org_id,
            target=f"access-grant:{grant.id}",
            details={
                "grant": grant.id,
                "person_type": person_type,
                "doors": len(devices),
                "until": None if end is None else end.isoformat(),
                "schedule": spec.schedule is not None,
                "uses": spec.uses,
            },
        )
        offset = DEFAULT_UTC_OFFSET_MINUTES
        if spec.schedule is not None:
            offset = spec.schedule.utc_offset_minutes
        anomalies = await AnomalyDetector(self.platform, self.session).check_grant(
            grant, actor_subject=actor_subject, utc_offset_minutes=offset
        )
        return grant, anomalies

    async def _doors(self, org_id: str, doors: DoorSelector) -> list[str]:
        explicit = doors.device_ids
        if explicit is None and doors.place_kind is None and doors.place_ref is None:
            raise InvalidInput("请选择门 / choose the doors", details={"field": "doors"})
        if explicit is not None and not 0 < len(explicit) <= MAX_DOORS:
            raise InvalidInput(f"doors: 1–{MAX_DOORS}", details={"field": "doors"})
        if doors.place_kind is not None and doors.place_kind not in PLACE_KINDS:
            raise InvalidInput(
                f"未知位置类型 / unknown place kind {doors.place_kind!r}",
                details={"field": "place_kind", "known": list(PLACE_KINDS)},
            )
        found = await self.repo.org_locks(
            org_id, device_ids=explicit, place_kind=doors.place_kind, place_ref=doors.place_ref
        )
        usable = [d.id for d in found if d.status in COMMANDABLE]
        if explicit is not None and len(usable) != len(set(explicit)):
            # Another organisation's lock is as unknown as a lock that does not exist.
            raise NotFound("门锁不存在 / no such lock", details={"field": "doors"})
        if not usable:
            raise NotFound("没有符合条件的门锁 / no lock matches", details={"field": "doors"})
        if len(usable) > MAX_DOORS:
            raise InvalidInput(f"doors: at most {MAX_DOORS}", details={"field": "doors"})
        return usable

    async def get(self, org_id: str, grant_id: str, *, for_update: bool = False) -> AccessGrant:
        grant = (
            await self.repo.grant(grant_id, for_update=for_update) if len(grant_id) <= 36 else None
        )
        if grant is None or grant.org_id != org_id:
            raise grant_not_found()
        return grant

    async def search(
        self,
        org_id: str,
        *,
        subject_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Sequence[AccessGrant]:
        return await self.repo.grants(
            org_id, subject_id=subject_id, status=status, limit=limit, offset=offset
        )

    async def revoke(
        self, actor: str, org_id: str, grant_id: str, *, reason: str = "revoked"
    ) -> AccessGrant:
        """End a grant and every credential under it (drops queued to the locks)."""
        grant = await self.get(org_id, grant_id, for_update=True)
        if grant.status != GrantStatus.ACTIVE:
            return grant
        await self.end(grant, actor, GrantStatus.REVOKED, reason)
        return grant

    async def _wipe_where_last(self, grant: AccessGrant, actor: str) -> int:
        """On check-out the locks forget the person (L5, L13): every lock of the ended grant
        that no other active grant of the person covers is told to wipe their credentials and
        templates, and confirms with a signed receipt. How many locks were told."""
        others = await self.repo.grants(
            grant.org_id,
            subject_id=grant.subject_id,
            status=GrantStatus.ACTIVE,
            limit=MAX_GRANTS_PER_SUBJECT,
            offset=0,
        )
        still_granted = {d for g in others if g.id != grant.id for d in json.loads(g.device_ids)}
        deliveries = Deliveries(self.platform, self.session)
        told = 0
        for device_id in json.loads(grant.device_ids):
            if device_id in still_granted:
                continue
            operation = await deliveries.lock_operation(
                actor,
                grant.org_id,
                device_id,
                WIPE_COMMAND,
                {"subject": grant.subject_id},
                subject_id=grant.subject_id,
            )
            told += operation is not None
        return told

    async def end(self, grant: AccessGrant, actor: str, status: GrantStatus, reason: str) -> int:
        """Mark ``grant`` (locked by the caller) ended and end its credentials; how many."""
        now = self.clock.now()
        grant.status = status
        grant.ended_at = grant.updated_at = now
        grant.end_reason = reason
        credentials = CredentialService(self.platform, self.session)
        live = [CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED]
        ended = 0
        for credential in await self.repo.credentials_of_grant(grant.id, live):
            await credentials.end(actor, credential, reason)
            ended += 1
        wiped = await self._wipe_where_last(grant, actor)
        details: Details = {
            "grant": grant.id,
            "reason": reason,
            "credentials": ended,
            "locks_wiped": wiped,
        }
        await self.record(
            f"access.grant.{status}",
            actor=actor,
            org_id=grant.org_id,
            target=f"access-grant:{grant.id}",
            details=details,
        )
        return ended
