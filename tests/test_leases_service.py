"""LeaseService on both backends: activation grants the tenants the room and its common doors;
arrears past due + grace freeze them (commands queued to every lock), a payment that clears the
arrears unfreezes them in the same transaction (R14c); a replayed payment is applied once; the
lease end expires access and the locks wipe; overlaps and bad input are refused whole."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import func, select

from anju.access.models import AccessFreeze, AccessGrant
from anju.errors import AnjuError
from anju.kit.clock import FixedClock
from anju.leases.models import Instalment, Lease, Payment
from anju.leases.rules import schedule
from anju.leases.service import LeaseService, PaymentIn
from anju.platform import Platform
from anju.protocol.access import FREEZE_COMMAND, UNFREEZE_COMMAND, WIPE_COMMAND
from tests.support.access import commands_of
from tests.support.leases import LeaseWorld, active_lease, lease_world, register_tenants, terms
from tests.support.registry import audit_entries

T = TypeVar("T")


@pytest.fixture
async def w(platform: Platform, clock: FixedClock, tmp_path: Path) -> LeaseWorld:
    return await lease_world(platform, clock, tmp_path, tenants=2)


async def call(platform: Platform, work: Callable[[LeaseService], Awaitable[T]]) -> T:
    async with platform.db.transaction() as session:
        return await work(LeaseService(platform, session))


async def refused(platform: Platform, work: Callable[[LeaseService], Awaitable[object]]) -> str:
    with pytest.raises(AnjuError) as caught:
        await call(platform, work)
    return caught.value.code


async def rows(platform: Platform, model: type[object]) -> int:
    async with platform.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def lock_commands(platform: Platform, w: LeaseWorld, name: str) -> int:
    room = await commands_of(platform, w.access.room.device_id, name)
    entrance = await commands_of(platform, w.access.entrance.device_id, name)
    return len(room) + len(entrance)


def at(clock: FixedClock, moment: datetime) -> datetime:
    """Move the test clock forward to ``moment``."""
    assert moment >= clock.now()
    return clock.advance(seconds=(moment - clock.now()).total_seconds())


def payment(amount: int, key: str = "pay-1") -> PaymentIn:
    return PaymentIn(amount, datetime(2026, 1, 11, 9, tzinfo=UTC), f"txn-{key}", key)


@pytest.mark.req("R13", "R14", "L15")
async def test_arrears_freeze_then_payment_unfreezes_at_once(
    platform: Platform, clock: FixedClock, w: LeaseWorld
) -> None:
    view = await active_lease(platform, w)
    lease_id = view.lease.id
    assert [t.grant_id is not None for t in view.tenants] == [True, True]
    async with platform.db.transaction() as session:
        grants = (await session.execute(select(AccessGrant))).scalars().all()
    assert {g.person_type for g in grants} == {"tenant"}
    assert all(w.access.room.device_id in g.device_ids for g in grants)
    assert all(w.access.entrance.device_id in g.device_ids for g in grants)

    # Due 2026-01-05 + 5 days' grace: still fine at 23:59 on the 10th in Shanghai (15:59 UTC)…
    at(clock, datetime(2026, 1, 10, 15, 59, tzinfo=UTC))
    result = await call(platform, lambda s: s.sweep(clock.now()))
    assert result.frozen == []
    # …frozen one minute later, when the 11th begins in Shanghai (still the 10th in UTC).
    at(clock, datetime(2026, 1, 10, 16, 0, tzinfo=UTC))
    result = await call(platform, lambda s: s.sweep(clock.now()))
    assert result.frozen == [lease_id]
    assert await lock_commands(platform, w, FREEZE_COMMAND) == 4  # 2 tenants × 2 locks
    assert await rows(platform, AccessFreeze) == 2
    # A second sweep changes nothing.
    assert (await call(platform, lambda s: s.sweep(clock.now()))).frozen == []

    # A partial payment does not clear the arrears…
    await call(platform, lambda s: s.pay("test", w.org, lease_id, payment(100_000, "p1")))
    assert await lock_commands(platform, w, UNFREEZE_COMMAND) == 0
    # …the rest does, and the unfreeze commands are queued in the same transaction.
    _, replayed = await call(platform, lambda s: s.pay("test", w.org, lease_id, payment(200_000)))
    assert not replayed
    assert await lock_commands(platform, w, UNFREEZE_COMMAND) == 4
    lease = await call(platform, lambda s: s.lease(w.org, lease_id))
    assert not lease.in_arrears
    # The replayed notification is applied once.
    _, replayed = await call(platform, lambda s: s.pay("test", w.org, lease_id, payment(200_000)))
    assert replayed
    assert await rows(platform, Payment) == 2
    view = await call(platform, lambda s: s.view(w.org, lease_id))
    assert view.instalments[0].paid_fen == 300_000
    assert sum(i.paid_fen for i in view.instalments) == 300_000
    # The same key with another amount is a different payment: refused.
    code = await refused(platform, lambda s: s.pay("test", w.org, lease_id, payment(1, "pay-1")))
    assert code == "idempotency_key_reused"
    assert len(await audit_entries(platform, "leases.arrears.lifted")) == 1


@pytest.mark.req("R13", "R14", "L5", "L15")
async def test_lease_end_and_termination_expire_access_and_wipe_the_locks(
    platform: Platform, clock: FixedClock, w: LeaseWorld
) -> None:
    view = await active_lease(
        platform, w, end_date=date(2026, 2, 28), monthly_rent_fen=1_000, due_day=1
    )
    await call(platform, lambda s: s.pay("test", w.org, view.lease.id, payment(2_000)))
    # 2026-03-01 00:00 in Shanghai: the period is over.
    at(clock, datetime(2026, 2, 28, 15, 59, tzinfo=UTC))
    assert (await call(platform, lambda s: s.sweep(clock.now()))).ended == []
    at(clock, datetime(2026, 2, 28, 16, 0, tzinfo=UTC))
    assert (await call(platform, lambda s: s.sweep(clock.now()))).ended == [view.lease.id]
    lease = await call(platform, lambda s: s.lease(w.org, view.lease.id))
    assert lease.status == "ended"
    async with platform.db.transaction() as session:
        grants = (await session.execute(select(AccessGrant))).scalars().all()
    assert {g.status for g in grants} == {"revoked"}
    assert await lock_commands(platform, w, WIPE_COMMAND) == 4

    # Termination of a second lease of the room (the room is free again).
    second = await active_lease(
        platform, w, start_date=date(2026, 3, 1), end_date=date(2026, 12, 31)
    )
    done = await call(platform, lambda s: s.terminate("test", w.org, second.lease.id, "moved out"))
    assert done.lease.status == "terminated"
    code = await refused(platform, lambda s: s.terminate("test", w.org, second.lease.id, "x"))
    assert code == "lease_state_conflict"
    assert await lock_commands(platform, w, WIPE_COMMAND) == 8


@pytest.mark.req("R13", "R14")
async def test_overlap_and_bad_input_are_refused_whole(
    platform: Platform, clock: FixedClock, w: LeaseWorld
) -> None:
    first = await active_lease(platform, w)
    # A second active lease of the room overlapping the first is refused at activation.
    draft = await call(
        platform, lambda s: s.create("test", w.org, terms(w, start_date=date(2026, 12, 31)))
    )
    code = await refused(platform, lambda s: s.activate("test", w.org, draft.lease.id))
    assert code == "lease_overlap"
    code = await refused(platform, lambda s: s.activate("test", w.org, first.lease.id))
    assert code == "lease_state_conflict"
    before = {m: await rows(platform, m) for m in (Lease, Instalment, AccessGrant)}
    other_tenant = (await register_tenants(platform, w.access.org_b, 1, seed=9))[0]
    cases: list[tuple[dict[str, object], str]] = [
        ({"end_date": date(2025, 12, 31)}, "invalid_input"),
        ({"end_date": date(2031, 1, 1)}, "invalid_input"),  # > 60 months
        ({"monthly_rent_fen": 0}, "invalid_input"),
        ({"monthly_rent_fen": -5}, "invalid_input"),
        ({"due_day": 29}, "invalid_input"),
        ({"grace_days": 61}, "invalid_input"),
        ({"currency": "USD"}, "invalid_input"),
        ({"tenants": ()}, "invalid_input"),
        ({"tenants": (w.tenants[0], w.tenants[0])}, "invalid_input"),
        ({"tenants": ("'; DROP TABLE leases; --",)}, "invalid_input"),
        ({"tenants": ("no-such-person",)}, "tenant_not_found"),
        ({"tenants": (other_tenant,)}, "tenant_not_found"),  # another organisation's person
        ({"room_id": w.tree.unit_id}, "room_not_found"),
    ]
    for change, expected in cases:
        code = await refused(platform, lambda s, c=change: s.create("test", w.org, terms(w, **c)))
        assert code == expected, change
    # Another organisation sees no lease of A's.
    code = await refused(platform, lambda s: s.view(w.access.org_b, first.lease.id))
    assert code == "lease_not_found"
    # Payments: draft, overpayment, malformed reference, naive time.
    lid = first.lease.id
    code = await refused(platform, lambda s: s.pay("t", w.org, draft.lease.id, payment(1)))
    assert code == "lease_state_conflict"
    code = await refused(platform, lambda s: s.pay("t", w.org, lid, payment(3_600_001)))
    assert code == "overpayment"
    bad_ref = PaymentIn(1, datetime(2026, 1, 2, tzinfo=UTC), "张三 房租", "k")
    assert await refused(platform, lambda s: s.pay("t", w.org, lid, bad_ref)) == "invalid_input"
    naive = PaymentIn(1, datetime(2026, 1, 2), "r", "k")
    assert await refused(platform, lambda s: s.pay("t", w.org, lid, naive)) == "invalid_input"
    after = {m: await rows(platform, m) for m in (Lease, Instalment, AccessGrant)}
    assert after == before
    assert await rows(platform, Payment) == 0


@pytest.mark.req("R13")
async def test_schedule_months_and_grace_setting(platform: Platform, w: LeaseWorld) -> None:
    periods = schedule(date(2026, 1, 31), date(2026, 5, 15), 300_000, 5)
    assert [(p.start, p.end) for p in periods[:2]] == [
        (date(2026, 1, 31), date(2026, 2, 27)),
        (date(2026, 2, 28), date(2026, 3, 30)),
    ]
    assert [p.due for p in periods] == [date(2026, m, 5) for m in (2, 3, 4, 5)]
    # The last, shorter period is charged by its share of days (16 of 31), rounded down.
    assert periods[-1].amount_fen == 300_000 * 16 // 31
    assert await call(platform, lambda s: s.grace_days(w.org)) == 5
    await call(platform, lambda s: s.set_grace_days("test", w.org, 10))
    view = await call(platform, lambda s: s.create("test", w.org, terms(w)))
    assert view.lease.grace_days == 10
    assert len(view.instalments) == 12
    assert await refused(platform, lambda s: s.set_grace_days("t", w.org, -1)) == "invalid_input"
