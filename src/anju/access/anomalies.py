"""Abnormal grants (L15, L17): mass grants by one actor, grants made at local night, grants
longer than the person type's norm, and self-grants. Each is stored, audited as
``access.anomaly.<kind>`` and returned by :func:`find_anomalies` — the hook the alarms domain
reads (docs/access.md, "Anomalies")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.context import AccessContext, Details
from anju.access.models import AccessAnomaly, AccessGrant
from anju.access.repository import AccessRepository
from anju.access.rules import POLICIES, PersonType
from anju.alarms.rules import ABNORMAL_GRANT
from anju.alarms.service import raise_platform_alarm
from anju.db import new_id

#: More than this many grants by one actor within MASS_WINDOW is a mass grant.
MASS_GRANTS = 20
MASS_WINDOW = timedelta(minutes=10)
#: Local night (minutes from midnight, in the property's UTC offset): [00:00, 06:00).
NIGHT_START, NIGHT_END = 0, 6 * 60
DEFAULT_UTC_OFFSET_MINUTES = 480  # China Standard Time


class AnomalyDetector(AccessContext):
    """Checks a grant just made (same transaction)."""

    async def check_grant(
        self, grant: AccessGrant, *, actor_subject: str | None, utc_offset_minutes: int
    ) -> list[str]:
        """The anomaly kinds ``grant`` shows; each is recorded. ``actor_subject``: the
        subject id recorded as the acting operator's own, if any (self-grants)."""
        found: list[tuple[str, Details]] = []
        count = await self.repo.grants_by_actor_since(
            grant.created_by, grant.org_id, grant.created_at - MASS_WINDOW
        )
        if count > MASS_GRANTS:
            found.append(("mass_grant", {"count": count, "window_minutes": 10}))
        local = grant.created_at + timedelta(minutes=utc_offset_minutes)
        minute = local.hour * 60 + local.minute
        if NIGHT_START <= minute < NIGHT_END:
            found.append(("odd_hours", {"local_minute": minute, "utc_offset": utc_offset_minutes}))
        norm = POLICIES[PersonType(grant.person_type)].norm
        if norm is not None and (
            grant.valid_until is None or grant.valid_until - grant.valid_from > norm
        ):
            days = (
                None if grant.valid_until is None else (grant.valid_until - grant.valid_from).days
            )
            found.append(("long_grant", {"days": days, "norm_days": norm.days}))
        if actor_subject is not None and actor_subject == grant.subject_id:
            found.append(("self_grant", {}))
        for kind, detail in found:
            await self._store(grant, kind, detail)
        return [kind for kind, _ in found]

    async def _store(self, grant: AccessGrant, kind: str, detail: Details) -> None:
        self.repo.add(
            AccessAnomaly(
                id=new_id(),
                org_id=grant.org_id,
                kind=kind,
                actor=grant.created_by,
                grant_id=grant.id,
                detail=json.dumps(detail, sort_keys=True),
                at=grant.created_at,
            )
        )
        await self.record(
            f"access.anomaly.{kind}",
            actor=grant.created_by,
            org_id=grant.org_id,
            target=f"access-grant:{grant.id}",
            details={"grant": grant.id, "person_type": grant.person_type, **detail},
            outcome="failure",
        )
        # L15 / L17: abnormal permission changes alert the operators at once (console stream
        # and signed webhooks), not only the audit log.
        await raise_platform_alarm(
            self.platform,
            self.session,
            org_id=grant.org_id,
            kind=ABNORMAL_GRANT,
            subject=grant.subject_id,
            details={"grant": grant.id, "anomaly": kind, "actor": grant.created_by},
        )


async def find_anomalies(
    session: AsyncSession,
    org_id: str,
    *,
    since: datetime | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> Sequence[AccessAnomaly]:
    """Anomalies of ``org_id``, newest first (what the alarms domain polls or reads)."""
    return await AccessRepository(session).anomalies(org_id, since=since, kind=kind, limit=limit)
