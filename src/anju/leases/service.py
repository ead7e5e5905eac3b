"""Leases of one organisation: create (draft), activate (access for every tenant), record
payments (idempotent), terminate, and the sweep that freezes tenants in arrears and ends leases.

R14c: a payment that clears the arrears lifts the arrears freeze in the same transaction, so
the unfreeze commands are queued to the locks the moment it commits. Services flush; the caller
commits (request, job or CLI command).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.freeze import FreezeService
from anju.access.grants import DoorSelector, GrantService, GrantSpec
from anju.access.rules import AccessConflict, FreezeReason, GrantStatus, check_subject
from anju.audit import AuditLog
from anju.db import new_id
from anju.errors import InvalidInput
from anju.leases.models import Instalment, Lease, LeaseSettings, LeaseTenant, Payment
from anju.leases.repository import LeasesRepository
from anju.leases.rules import (
    CURRENCY,
    DEFAULT_GRACE_DAYS,
    MAX_TENANTS,
    IdempotencyKeyReused,
    LeaseNotFound,
    LeaseOverlap,
    LeaseStateConflict,
    LeaseStatus,
    Overpayment,
    RoomHasNoDoors,
    TenantNotFound,
    check_grace,
    check_terms,
    local_date,
    local_midnight,
    schedule,
)
from anju.platform import Platform
from anju.properties.service import PropertyService

SYSTEM = "system"
#: A payment's reference and idempotency key: a transaction id, never free text (no PI).
TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
SWEEP_PAGE = 200


@dataclass(frozen=True)
class LeaseTerms:
    room_id: str
    tenants: tuple[str, ...]
    start_date: date
    end_date: date
    monthly_rent_fen: int
    due_day: int
    grace_days: int | None = None  # None: the organisation's default
    currency: str = CURRENCY


@dataclass(frozen=True)
class PaymentIn:
    amount_fen: int
    paid_at: datetime
    reference: str
    idempotency_key: str


@dataclass(frozen=True)
class LeaseView:
    lease: Lease
    tenants: Sequence[LeaseTenant]
    instalments: Sequence[Instalment]
    payments: Sequence[Payment] = ()

    @property
    def outstanding_fen(self) -> int:
        return sum(i.amount_fen - i.paid_fen for i in self.instalments)


@dataclass
class SweepResult:
    frozen: list[str] = field(default_factory=list)  # lease ids
    unfrozen: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)


def _token(value: str, name: str) -> str:
    if not TOKEN.fullmatch(value):
        raise InvalidInput(f"{name}: [A-Za-z0-9_.:-]{{1,64}}", details={"field": name})
    return value


def overdue(instalments: Sequence[Instalment], grace_days: int, today: date) -> bool:
    """Whether any instalment is still unpaid after its due date plus the grace period."""
    return any(
        i.paid_fen < i.amount_fen and today > i.due_date + timedelta(days=grace_days)
        for i in instalments
    )


class LeaseService:
    """Leases of one transaction (the caller commits)."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self.platform = platform
        self.session = session
        self.clock = platform.clock
        self.repo = LeasesRepository(session)
        self.audit = AuditLog(platform)

    async def _record(self, action: str, actor: str, lease: Lease, **details: str | int) -> None:
        await self.audit.record(
            self.session,
            action=f"leases.{action}",
            actor=actor,
            org_id=lease.org_id,
            target=f"lease:{lease.id}",
            details={"lease": lease.id, **details},
        )

    # --- settings --------------------------------------------------------------------------
    async def grace_days(self, org_id: str) -> int:
        """The organisation's grace period for new leases (5 days unless set)."""
        row = await self.repo.settings(org_id)
        return DEFAULT_GRACE_DAYS if row is None else row.grace_days

    async def set_grace_days(self, actor: str, org_id: str, days: int) -> int:
        check_grace(days)
        row = await self.repo.settings(org_id, for_update=True)
        now = self.clock.now()
        if row is None:
            self.repo.add(LeaseSettings(org_id=org_id, grace_days=days, updated_at=now))
        else:
            row.grace_days, row.updated_at = days, now
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="leases.settings.changed",
            actor=actor,
            org_id=org_id,
            details={"grace_days": days},
        )
        return days

    # --- reading ---------------------------------------------------------------------------
    async def lease(self, org_id: str, lease_id: str, *, for_update: bool = False) -> Lease:
        row = None
        if 0 < len(lease_id) <= 36:
            row = await self.repo.lease(org_id, lease_id, for_update=for_update)
        if row is None:
            raise LeaseNotFound("租约不存在 / no such lease", details={"id": lease_id[:64]})
        return row

    async def view(self, org_id: str, lease_id: str) -> LeaseView:
        lease = await self.lease(org_id, lease_id)
        return await self._view(lease, payments=True)

    async def _view(self, lease: Lease, *, payments: bool = False) -> LeaseView:
        return LeaseView(
            lease,
            await self.repo.tenants(lease.id),
            await self.repo.instalments(lease.id),
            await self.repo.payments(lease.id) if payments else (),
        )

    async def leases(
        self,
        org_id: str,
        *,
        room_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Sequence[Lease]:
        return await self.repo.leases(
            org_id, room_id=room_id, status=status, limit=limit, offset=offset
        )

    # --- lifecycle -------------------------------------------------------------------------
    async def create(self, actor: str, org_id: str, terms: LeaseTerms) -> LeaseView:
        """A draft lease of a room of the organisation, with its rent schedule."""
        if terms.currency != CURRENCY:
            raise InvalidInput("币种仅支持 CNY / currency: CNY", details={"field": "currency"})
        grace = await self.grace_days(org_id) if terms.grace_days is None else terms.grace_days
        check_terms(terms.start_date, terms.end_date, terms.monthly_rent_fen, terms.due_day, grace)
        tenants = [check_subject(s) for s in terms.tenants]
        if not 0 < len(tenants) <= MAX_TENANTS or len(set(tenants)) != len(tenants):
            raise InvalidInput(
                f"租户 1–{MAX_TENANTS} 人，不重复 / tenants: 1–{MAX_TENANTS}, distinct",
                details={"field": "tenants"},
            )
        room = await PropertyService(self.platform, self.session).room(org_id, terms.room_id)
        for subject_id in tenants:
            if await self.repo.active_person(org_id, subject_id) is None:
                raise TenantNotFound(
                    "租户未在本机构登记 / the tenant is not registered in this organisation",
                    details={"subject_id": subject_id},
                )
        now = self.clock.now()
        lease = Lease(
            id=new_id(),
            org_id=org_id,
            room_id=room.id,
            status=LeaseStatus.DRAFT,
            start_date=terms.start_date,
            end_date=terms.end_date,
            monthly_rent_fen=terms.monthly_rent_fen,
            due_day=terms.due_day,
            currency=CURRENCY,
            grace_days=grace,
            in_arrears=False,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        self.repo.add(lease)
        await self.session.flush()
        for subject_id in tenants:
            self.repo.add(LeaseTenant(lease_id=lease.id, subject_id=subject_id))
        for p in schedule(terms.start_date, terms.end_date, terms.monthly_rent_fen, terms.due_day):
            self.repo.add(
                Instalment(
                    id=new_id(),
                    lease_id=lease.id,
                    seq=p.seq,
                    period_start=p.start,
                    period_end=p.end,
                    due_date=p.due,
                    amount_fen=p.amount_fen,
                    paid_fen=0,
                )
            )
        await self.session.flush()
        await self._record("created", actor, lease, room=room.id, tenants=len(tenants))
        return await self._view(lease)

    async def activate(self, actor: str, org_id: str, lease_id: str) -> LeaseView:
        """draft → active: refused if another active lease of the room overlaps; every tenant
        gets a ``tenant`` grant on the room's locks and common doors for the lease period."""
        lease = await self.lease(org_id, lease_id, for_update=True)
        if lease.status != LeaseStatus.DRAFT:
            raise LeaseStateConflict(
                "只有草稿租约可以生效 / only a draft lease can be activated",
                details={"status": lease.status},
            )
        properties = PropertyService(self.platform, self.session)
        await properties.room(org_id, lease.room_id, for_update=True)  # serialise per room
        other = await self.repo.overlapping_active(
            lease.room_id, lease.start_date, lease.end_date, other_than=lease.id
        )
        if other is not None:
            raise LeaseOverlap(
                "该房间在此期间已有生效租约 / the room has an active lease in that period",
                details={"lease": other.id},
            )
        now = self.clock.now()
        until = local_midnight(lease.end_date + timedelta(days=1))
        if until <= now:
            raise LeaseStateConflict(
                "租期已过 / the lease period is over", details={"end_date": str(lease.end_date)}
            )
        doors = await properties.doors_of_room(org_id, lease.room_id)
        if not doors.all:
            raise RoomHasNoDoors(
                "房间未绑定门锁 / the room has no lock bound", details={"room": lease.room_id}
            )
        grants = GrantService(self.platform, self.session)
        start = max(now, local_midnight(lease.start_date))
        for tenant in await self.repo.tenants(lease.id):
            spec = GrantSpec(
                tenant.subject_id,
                "tenant",
                DoorSelector(device_ids=doors.all),
                valid_until=until,
                valid_from=start,
            )
            grant, _ = await grants.create(actor, org_id, spec)
            tenant.grant_id = grant.id
        lease.status = LeaseStatus.ACTIVE
        lease.activated_at = lease.updated_at = now
        await self.session.flush()
        await self._record("activated", actor, lease, doors=len(doors.all))
        await self._check_arrears(lease, actor, now)
        return await self._view(lease)

    async def terminate(self, actor: str, org_id: str, lease_id: str, reason: str) -> LeaseView:
        """End a draft or active lease now: the tenants' grants end (the locks wipe them)."""
        if not 0 < len(reason) <= 200 or not reason.isprintable():
            raise InvalidInput("reason: 1–200 printable characters", details={"field": "reason"})
        lease = await self.lease(org_id, lease_id, for_update=True)
        if lease.status not in (LeaseStatus.DRAFT, LeaseStatus.ACTIVE):
            raise LeaseStateConflict(
                "租约已结束 / the lease is over", details={"status": lease.status}
            )
        await self._finish(lease, actor, LeaseStatus.TERMINATED, reason)
        return await self._view(lease)

    async def _finish(self, lease: Lease, actor: str, status: LeaseStatus, reason: str) -> None:
        grants = GrantService(self.platform, self.session)
        for tenant in await self.repo.tenants(lease.id):
            if tenant.grant_id is not None:
                grant = await grants.get(lease.org_id, tenant.grant_id, for_update=True)
                if grant.status == GrantStatus.ACTIVE:
                    await grants.end(grant, actor, GrantStatus.REVOKED, f"lease_{status}")
        await self._lift(lease, actor)
        now = self.clock.now()
        lease.status = status
        lease.ended_at = lease.updated_at = now
        lease.end_reason = reason
        await self.session.flush()
        await self._record(str(status), actor, lease, reason=reason[:100])

    # --- payments --------------------------------------------------------------------------
    async def pay(
        self, actor: str, org_id: str, lease_id: str, payment: PaymentIn
    ) -> tuple[Payment, bool]:
        """Record a payment once per idempotency key (oldest instalments first); (payment,
        replayed). A payment that clears the arrears lifts the freeze right away (R14c)."""
        key = _token(payment.idempotency_key, "idempotency_key")
        reference = _token(payment.reference, "reference")
        if payment.paid_at.utcoffset() is None:
            raise InvalidInput("paid_at: give a UTC offset", details={"field": "paid_at"})
        lease = await self.lease(org_id, lease_id, for_update=True)
        earlier = await self.repo.payment_by_key(lease.id, key)
        if earlier is not None:
            same = (earlier.amount_fen, earlier.reference) == (payment.amount_fen, reference)
            if not same:
                raise IdempotencyKeyReused(
                    "同一幂等键的不同付款 / a different payment under the same idempotency key",
                    details={"field": "idempotency_key"},
                )
            return earlier, True
        if lease.status == LeaseStatus.DRAFT:
            raise LeaseStateConflict(
                "草稿租约不收款 / a draft lease takes no payment", details={"status": lease.status}
            )
        instalments = await self.repo.instalments(lease.id)
        outstanding = sum(i.amount_fen - i.paid_fen for i in instalments)
        if not 0 < payment.amount_fen <= outstanding:
            raise Overpayment(
                f"金额应为 1–{outstanding} 分 / amount: 1–{outstanding} fen (what is owed)",
                details={"field": "amount_fen", "outstanding_fen": outstanding},
            )
        now = self.clock.now()
        row = Payment(
            id=new_id(),
            lease_id=lease.id,
            org_id=org_id,
            idempotency_key=key,
            amount_fen=payment.amount_fen,
            paid_at=payment.paid_at,
            reference=reference,
            recorded_by=actor,
            recorded_at=now,
        )
        self.repo.add(row)
        left = payment.amount_fen
        for instalment in instalments:
            take = min(left, instalment.amount_fen - instalment.paid_fen)
            instalment.paid_fen += take
            left -= take
        lease.updated_at = now
        await self.session.flush()
        await self._record("payment.recorded", actor, lease, payment=row.id)
        await self._check_arrears(lease, actor, now, instalments)
        return row, False

    # --- arrears and the sweep -------------------------------------------------------------
    async def _check_arrears(
        self,
        lease: Lease,
        actor: str,
        now: datetime,
        instalments: Sequence[Instalment] | None = None,
    ) -> str | None:
        """Freeze or unfreeze the tenants as the lease's arrears stand at ``now``; what changed."""
        if lease.status != LeaseStatus.ACTIVE:
            return None
        rows = instalments if instalments is not None else await self.repo.instalments(lease.id)
        behind = overdue(rows, lease.grace_days, local_date(now))
        if behind and not lease.in_arrears:
            await self._freeze(lease, actor)
            return "frozen"
        if not behind and lease.in_arrears:
            await self._lift(lease, actor)
            return "unfrozen"
        return None

    async def _freeze(self, lease: Lease, actor: str) -> None:
        freezes = FreezeService(self.platform, self.session)
        for tenant in await self.repo.tenants(lease.id):
            try:
                view = await freezes.freeze(
                    actor,
                    lease.org_id,
                    tenant.subject_id,
                    FreezeReason.ARREARS,
                    f"lease {lease.id}",
                )
            except AccessConflict:
                continue  # frozen already for another reason: that freeze stays the operator's
            tenant.freeze_id = view.freeze.id
        lease.in_arrears = True
        await self.session.flush()
        await self._record("arrears.frozen", actor, lease)

    async def _lift(self, lease: Lease, actor: str) -> None:
        if not lease.in_arrears:
            return
        freezes = FreezeService(self.platform, self.session)
        for tenant in await self.repo.tenants(lease.id):
            if tenant.freeze_id is None:
                continue
            with contextlib.suppress(AccessConflict):  # lifted by hand meanwhile
                await freezes.lift(actor, lease.org_id, tenant.freeze_id)
            tenant.freeze_id = None
        lease.in_arrears = False
        await self.session.flush()
        await self._record("arrears.lifted", actor, lease)

    async def sweep(self, now: datetime) -> SweepResult:
        """End active leases past their end; freeze tenants in arrears, unfreeze the rest."""
        result = SweepResult()
        after = ""
        while True:
            page = await self.repo.active_leases(limit=SWEEP_PAGE, after=after)
            for lease in page:
                if now >= local_midnight(lease.end_date + timedelta(days=1)):
                    await self._finish(lease, SYSTEM, LeaseStatus.ENDED, "period_over")
                    result.ended.append(lease.id)
                    continue
                changed = await self._check_arrears(lease, SYSTEM, now)
                if changed == "frozen":
                    result.frozen.append(lease.id)
                elif changed == "unfrozen":
                    result.unfrozen.append(lease.id)
            if len(page) < SWEEP_PAGE:
                return result
            after = page[-1].id
