"""Freeze / unfreeze a person's access in an organisation (R14c; docs/access.md, "Freeze").

Freezing queues ``access.freeze {subject}`` to every lock the subject has a grant or a live
credential on — delivery is woken when the transaction commits, so online locks refuse the
person within tens of milliseconds; eKeys carry the subject, so the lock's freeze covers them
without revoking them. Unfreezing queues ``access.unfreeze``. (Offline passcodes carry no
subject: revoking their serials on freeze comes with offline passcode issuing, not built
yet.) New credentials cannot be issued to a frozen subject. State, reason and per-lock
confirmations are visible and audited.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from anju.access.context import AccessContext
from anju.access.credentials.delivery import Deliveries
from anju.access.models import AccessFreeze, AccessLockOperation
from anju.access.rules import (
    NOTE,
    AccessConflict,
    CredentialStatus,
    DeliveryState,
    FreezeReason,
    GrantStatus,
    check_subject,
)
from anju.db import new_id
from anju.errors import InvalidInput, NotFound
from anju.protocol.access import FREEZE_COMMAND, UNFREEZE_COMMAND

FROZEN, LIFTED = "frozen", "lifted"


@dataclass(frozen=True)
class FreezeView:
    """A freeze with the per-lock state of its commands."""

    freeze: AccessFreeze
    locks: Sequence[AccessLockOperation]


class FreezeService(AccessContext):
    """Freezes of one transaction (the caller commits)."""

    async def freeze(
        self, actor: str, org_id: str, subject_id: str, reason: str, note: str | None = None
    ) -> FreezeView:
        check_subject(subject_id)
        try:
            why = FreezeReason(reason)
        except ValueError:
            raise InvalidInput(
                f"未知冻结原因 / unknown reason {reason!r}",
                details={"field": "reason", "known": [r.value for r in FreezeReason]},
            ) from None
        if note is not None and not NOTE.fullmatch(note):
            raise InvalidInput("note: at most 200 printable characters", details={"field": "note"})
        if await self.repo.active_freeze(org_id, subject_id, for_update=True) is not None:
            raise AccessConflict(
                "该人员已被冻结 / already frozen", details={"reason": "already_frozen"}
            )
        now = self.clock.now()
        row = AccessFreeze(
            id=new_id(),
            org_id=org_id,
            subject_id=subject_id,
            reason=why,
            note=note,
            status=FROZEN,
            frozen_by=actor,
            frozen_at=now,
        )
        self.repo.add(row)
        await self.session.flush()
        deliveries = Deliveries(self.platform, self.session)
        locks = await self._locks_of(org_id, subject_id)
        for device_id in locks:
            await deliveries.lock_operation(
                actor,
                org_id,
                device_id,
                FREEZE_COMMAND,
                {"subject": subject_id},
                subject_id=subject_id,
                freeze_id=row.id,
            )
        await self.record(
            "access.freeze.frozen",
            actor=actor,
            org_id=org_id,
            target=f"subject:{subject_id}",
            details={"freeze": row.id, "reason": why, "locks": len(locks)},
        )
        return FreezeView(row, await self.repo.lock_operations_of_freeze(row.id))

    async def lift(self, actor: str, org_id: str, freeze_id: str) -> FreezeView:
        """Unfreeze: ``access.unfreeze`` to every lock the freeze went to (and any new one)."""
        row = await self._get(org_id, freeze_id, for_update=True)
        if row.status != FROZEN:
            raise AccessConflict(
                "冻结已解除 / already lifted", details={"reason": "already_lifted"}
            )
        now = self.clock.now()
        row.status = LIFTED
        row.lifted_by = actor
        row.lifted_at = now
        deliveries = Deliveries(self.platform, self.session)
        earlier = {op.device_id for op in await self.repo.lock_operations_of_freeze(row.id)}
        locks = sorted(earlier | set(await self._locks_of(org_id, row.subject_id)))
        for device_id in locks:
            await deliveries.lock_operation(
                actor,
                org_id,
                device_id,
                UNFREEZE_COMMAND,
                {"subject": row.subject_id},
                subject_id=row.subject_id,
                freeze_id=row.id,
            )
        await self.record(
            "access.freeze.lifted",
            actor=actor,
            org_id=org_id,
            target=f"subject:{row.subject_id}",
            details={"freeze": row.id, "locks": len(locks)},
        )
        return FreezeView(row, await self.repo.lock_operations_of_freeze(row.id))

    async def view(self, org_id: str, freeze_id: str) -> FreezeView:
        row = await self._get(org_id, freeze_id)
        return FreezeView(row, await self.repo.lock_operations_of_freeze(row.id))

    async def search(
        self, org_id: str, *, subject_id: str | None, status: str | None, limit: int = 100
    ) -> Sequence[AccessFreeze]:
        return await self.repo.freezes(org_id, subject_id=subject_id, status=status, limit=limit)

    async def _get(self, org_id: str, freeze_id: str, *, for_update: bool = False) -> AccessFreeze:
        row = await self.repo.freeze(freeze_id) if len(freeze_id) <= 36 else None
        if row is None or row.org_id != org_id:
            raise NotFound("冻结记录不存在 / no such freeze")
        return row

    async def _locks_of(self, org_id: str, subject_id: str) -> list[str]:
        """Every lock the subject has an active grant on or a credential still on."""
        locks: set[str] = set()
        for grant in await self.repo.grants(
            org_id, subject_id=subject_id, status=GrantStatus.ACTIVE, limit=10_000, offset=0
        ):
            locks.update(json.loads(grant.device_ids))
        live = [CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED]
        for credential in await self.repo.credentials_of_subject(org_id, subject_id, live):
            for row in await self.repo.deliveries(credential.id):
                if row.state != DeliveryState.REMOVED:
                    locks.add(row.device_id)
        return sorted(locks)
