"""Device commands, store-and-forward: outbox, order, retries, expiry, acks, audit, concurrency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from anju.audit.models import AuditEntry
from anju.db import Database
from anju.devices.command_models import DeviceCommand
from anju.devices.commands import (
    MAX_ARGS_BYTES,
    RETRY_INTERVAL_SECONDS,
    CommandCounters,
    CommandService,
    CommandStatus,
    command_message,
)
from anju.devices.commands.service import DeviceAck
from anju.devices.lifecycle import Status
from anju.devices.models import DeviceOperation
from anju.devices.service import DeviceService
from anju.errors import AnjuError
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.messages import decode_message, encode_message
from tests.support.registry import (
    Made,
    Tenant,
    as_device_principal,
    audit_entries,
    claim,
    manufacture,
    tenant,
)

T = TypeVar("T")
UNLOCK = {"duration_s": 5}


@dataclass
class World:
    a: Tenant
    b: Tenant
    devices: list[Made]  # the first two claimed by org A, the third by org B


async def world(platform: Platform, clock: FixedClock, tmp_path: Path) -> World:
    devices = await manufacture(platform, tmp_path, count=3)
    a = await tenant(platform, clock, "sa-a", "Org A")
    b = await tenant(platform, clock, "sa-b", "Org B")
    await claim(platform, a, devices[0])
    await claim(platform, a, devices[1])
    await claim(platform, b, devices[2])
    return World(a, b, devices)


async def in_tx(
    platform: Platform,
    work: Callable[[CommandService], Awaitable[T]],
    counters: CommandCounters | None = None,
) -> T:
    async with platform.db.transaction() as session:
        return await work(CommandService(platform, session, counters=counters))


async def enqueue(
    platform: Platform, w: World, index: int = 0, name: str = "unlock", **kwargs: Any
) -> DeviceCommand:
    org = w.b if index == 2 else w.a
    args = kwargs.pop("args", UNLOCK)
    ttl = kwargs.pop("ttl_seconds", 600)
    return await in_tx(
        platform,
        lambda s: s.enqueue(
            f"account:{org.admin.id}",
            org.admin.org_id,
            w.devices[index].device_id,
            name,
            args,
            ttl,
            **kwargs,
        ),
    )


async def deliver(
    platform: Platform, device_id: str, *, new_session: bool = False, limit: int = 50
) -> list[DeviceCommand]:
    """What the gateway does: take the due commands and mark them sent, in one transaction."""

    async def work(s: CommandService) -> list[DeviceCommand]:
        due = await s.deliverable(device_id, limit, new_session=new_session)
        await s.mark_sent([c.id for c in due])
        return due

    return await in_tx(platform, work)


async def peek(platform: Platform, device_id: str, **kw: Any) -> list[str]:
    return [c.id for c in await in_tx(platform, lambda s: s.deliverable(device_id, **kw))]


async def row(platform: Platform, command_id: str) -> DeviceCommand:
    async with platform.db.transaction() as session:
        command = await session.get(DeviceCommand, command_id)
        assert command is not None
        return command


async def expect_code(awaitable: Awaitable[Any], code: str, status: int | None = None) -> None:
    with pytest.raises(AnjuError) as caught:
        await awaitable
    assert caught.value.code == code, caught.value
    if status is not None:
        assert caught.value.status == status


# --- lifecycle ---------------------------------------------------------------------------------
@pytest.mark.req("R11", "L17", "R14")
async def test_command_goes_queued_sent_acked_and_is_audited(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id
    counters = CommandCounters()
    command = await enqueue(platform, w)
    assert (command.status, command.seq, command.attempts) == (CommandStatus.QUEUED, 1, 0)
    assert command.max_attempts == 5
    assert command.expires_at == command.created_at + timedelta(seconds=600)

    sent = await deliver(platform, device_id)
    assert [c.id for c in sent] == [command.id]
    # The message the device receives is valid on the wire and carries the arguments.
    message = command_message(sent[0])
    assert decode_message(encode_message(message, "platform"), "platform") == {
        "t": "cmd",
        "id": command.id,
        "name": "unlock",
        "args": UNLOCK,
        "exp": int(command.expires_at.timestamp() * 1000),
    }
    after_send = await row(platform, command.id)
    assert (after_send.status, after_send.attempts) == (CommandStatus.SENT, 1)
    assert after_send.sent_at == clock.now()
    assert await peek(platform, device_id) == []  # in flight, retry not due yet

    clock.advance(seconds=2)
    acked = await in_tx(
        platform, lambda s: s.record_ack(device_id, command.id, True, None), counters
    )
    assert acked is not None
    assert (acked.status, acked.acked_at, acked.result_code) == (
        CommandStatus.ACKED,
        clock.now(),
        None,
    )
    assert counters.acked == 1
    assert await peek(platform, device_id) == []
    queued = await audit_entries(platform, "devices.command.queued")
    assert [(e.actor, e.org_id, e.target) for e in queued] == [
        (f"account:{w.a.admin.id}", w.a.admin.org_id, f"device:{device_id}")
    ]
    (ack_entry,) = await audit_entries(platform, "devices.command.acked")
    assert ack_entry.actor == f"device:{device_id}"
    assert json.loads(ack_entry.details)["command"] == command.id
    async with platform.db.transaction() as session:
        ops = (await session.execute(select(DeviceOperation.operation))).scalars().all()
    assert "command.queued" in ops


@pytest.mark.req("R11", "L17")
async def test_negative_ack_fails_the_command_with_the_device_code(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id
    command = await enqueue(platform, w)
    await deliver(platform, device_id)
    done = await in_tx(platform, lambda s: s.record_ack(device_id, command.id, False, "jammed"))
    assert done is not None
    assert (done.status, done.result_code) == (CommandStatus.FAILED, "jammed")
    (entry,) = await audit_entries(platform, "devices.command.failed")
    assert entry.outcome == "failure"
    assert json.loads(entry.details)["code"] == "jammed"


@pytest.mark.req("R11", "L17")
async def test_acks_that_arrive_together_are_recorded_and_audited_one_by_one(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    first, second = w.devices[0].device_id, w.devices[1].device_id
    ok = await enqueue(platform, w, 0)
    refused = await enqueue(platform, w, 1)
    await deliver(platform, first)
    await deliver(platform, second)
    counters = CommandCounters()
    done = await in_tx(
        platform,
        lambda s: s.record_acks(
            [
                DeviceAck(first, ok.id, True, None),
                DeviceAck(second, refused.id, False, "jammed"),
                DeviceAck(first, refused.id, True, None),  # another device's command
                DeviceAck(first, ok.id, True, None),  # a repeat in the same batch
            ]
        ),
        counters,
    )
    assert [c.id if c else None for c in done] == [ok.id, refused.id, None, ok.id]
    assert (await row(platform, ok.id)).status == CommandStatus.ACKED
    failed = await row(platform, refused.id)
    assert (failed.status, failed.result_code) == (CommandStatus.FAILED, "jammed")
    assert (counters.acked, counters.failed, counters.ignored_acks, counters.duplicate_acks) == (
        1,
        1,
        1,
        1,
    )
    (acked,) = await audit_entries(platform, "devices.command.acked")
    (failed_entry,) = await audit_entries(platform, "devices.command.failed")
    assert acked.actor == f"device:{first}"
    assert failed_entry.actor == f"device:{second}"
    # An invalid code refuses the whole batch before anything is recorded.
    with pytest.raises(AnjuError):
        await in_tx(platform, lambda s: s.record_acks([DeviceAck(first, ok.id, False, "BAD CODE")]))


@pytest.mark.req("R11", "R2")
async def test_offline_device_gets_its_commands_when_it_connects(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id
    async with platform.db.transaction() as session:
        await DeviceService(platform, session).mark_online(device_id)
        await DeviceService(platform, session).mark_offline(device_id)
    command = await enqueue(platform, w, ttl_seconds=3600)
    clock.advance(seconds=3000)  # offline for 50 minutes: the command waits
    assert (await row(platform, command.id)).status == CommandStatus.QUEUED
    assert [c.id for c in await deliver(platform, device_id, new_session=True)] == [command.id]


# --- retries, failure, expiry ----------------------------------------------------------------
@pytest.mark.req("R11")
async def test_unacked_command_is_sent_again_after_the_retry_interval(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id
    command = await enqueue(platform, w)
    await deliver(platform, device_id)
    clock.advance(seconds=RETRY_INTERVAL_SECONDS - 1)
    assert await peek(platform, device_id) == []
    clock.advance(seconds=1)
    assert [c.id for c in await deliver(platform, device_id)] == [command.id]
    again = await row(platform, command.id)
    assert (again.status, again.attempts, again.sent_at) == (CommandStatus.SENT, 2, clock.now())
    # A custom interval is honoured.
    clock.advance(seconds=3)
    slow = await in_tx(
        platform,
        lambda s: CommandService(platform, s.session, retry_interval_seconds=2).deliverable(
            device_id
        ),
    )
    assert [c.id for c in slow] == [command.id]


@pytest.mark.req("R11", "L17")
async def test_command_fails_after_max_attempts_and_a_late_ack_still_counts(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id
    counters = CommandCounters()
    command = await enqueue(platform, w, max_attempts=2)
    for _ in range(2):
        assert [c.id for c in await deliver(platform, device_id)] == [command.id]
        clock.advance(seconds=RETRY_INTERVAL_SECONDS)
    assert await deliver(platform, device_id) == []  # the third send is never made
    failed = await row(platform, command.id)
    assert (failed.status, failed.attempts, failed.result_code) == (
        CommandStatus.FAILED,
        2,
        "no_ack",
    )
    (entry,) = await audit_entries(platform, "devices.command.failed")
    assert (entry.actor, json.loads(entry.details)["code"]) == ("system", "no_ack")

    late = await in_tx(
        platform, lambda s: s.record_ack(device_id, command.id, True, None), counters
    )
    assert late is not None
    assert late.status == CommandStatus.ACKED
    assert counters.late_acks == 1
    (ack,) = await audit_entries(platform, "devices.command.acked")
    assert json.loads(ack.details)["late"] is True


@pytest.mark.req("R11", "L15")
async def test_expired_commands_are_never_delivered(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id
    never_sent = await enqueue(platform, w, ttl_seconds=30)
    in_flight = await enqueue(platform, w, ttl_seconds=30)
    await in_tx(platform, lambda s: s.mark_sent([in_flight.id]))
    clock.advance(seconds=30)
    assert await deliver(platform, device_id, new_session=True) == []
    for command_id in (never_sent.id, in_flight.id):
        expired = await row(platform, command_id)
        assert (expired.status, expired.result_code) == (CommandStatus.EXPIRED, "expired")
    # Nothing brings it back: marking it sent changes nothing.
    await in_tx(platform, lambda s: s.mark_sent([never_sent.id]))
    assert (await row(platform, never_sent.id)).attempts == 0
    # Nor is a command past its TTL marked sent before any sweep has closed it.
    late = await enqueue(platform, w, ttl_seconds=5)
    clock.advance(seconds=5)
    await in_tx(platform, lambda s: s.mark_sent([late.id]))
    unsent = await row(platform, late.id)
    assert (unsent.status, unsent.attempts) == (CommandStatus.QUEUED, 0)
    assert await deliver(platform, device_id) == []
    assert (await row(platform, late.id)).status == CommandStatus.EXPIRED
    assert len(await audit_entries(platform, "devices.command.expired")) == 3


@pytest.mark.req("R11", "L17")
async def test_expiry_sweep_closes_commands_of_every_device_once(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    first = await enqueue(platform, w, 0, ttl_seconds=60)
    other_org = await enqueue(platform, w, 2, ttl_seconds=60)
    lives = await enqueue(platform, w, 1, ttl_seconds=600)
    clock.advance(seconds=59)
    assert await in_tx(platform, lambda s: s.expire_due()) == 0
    clock.advance(seconds=1)
    assert await in_tx(platform, lambda s: s.expire_due()) == 2
    assert await in_tx(platform, lambda s: s.expire_due()) == 0
    assert (await row(platform, first.id)).status == CommandStatus.EXPIRED
    assert (await row(platform, other_org.id)).status == CommandStatus.EXPIRED
    assert (await row(platform, lives.id)).status == CommandStatus.QUEUED
    orgs = {e.org_id for e in await audit_entries(platform, "devices.command.expired")}
    assert orgs == {w.a.admin.org_id, w.b.admin.org_id}


# --- order --------------------------------------------------------------------------------------
@pytest.mark.req("R11")
async def test_commands_are_numbered_per_device_and_delivered_in_order(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id
    mine = [await enqueue(platform, w, 0, name=f"step{i}") for i in range(5)]
    other = await enqueue(platform, w, 1)
    assert [c.seq for c in mine] == [1, 2, 3, 4, 5]
    assert other.seq == 1  # numbering is per device
    first_two = await deliver(platform, device_id, limit=2)
    assert [c.name for c in first_two] == ["step0", "step1"]
    rest = await deliver(platform, device_id)
    assert [c.name for c in rest] == ["step2", "step3", "step4"]
    # A new session resends everything unacked, in order, before anything newer.
    newest = await enqueue(platform, w, 0, name="step5")
    await in_tx(platform, lambda s: s.record_ack(device_id, mine[1].id, True, None))
    assert await peek(platform, device_id) == [newest.id]
    resent = await peek(platform, device_id, new_session=True)
    assert resent == [mine[0].id, mine[2].id, mine[3].id, mine[4].id, newest.id]


@pytest.mark.req("R11")
async def test_sequence_numbers_stay_unique_under_concurrent_enqueues(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id

    async def one(i: int) -> int:
        async with platform.db.transaction() as session:
            command = await CommandService(platform, session).enqueue(
                "system", None, device_id, f"c{i}", {}, 600
            )
            await asyncio.sleep(0)  # let the others run while this transaction is open
            return command.seq

    seqs = await asyncio.gather(*(one(i) for i in range(12)))
    assert sorted(seqs) == list(range(1, 13))
    delivered = await deliver(platform, device_id)
    assert [c.seq for c in delivered] == list(range(1, 13))


# --- acks --------------------------------------------------------------------------------------
@pytest.mark.req("R11", "L16")
async def test_acks_are_idempotent_and_foreign_or_unsent_acks_are_ignored(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    mine, theirs = w.devices[0].device_id, w.devices[1].device_id
    counters = CommandCounters()
    command = await enqueue(platform, w, 0)
    unsent = await enqueue(platform, w, 0)
    await in_tx(platform, lambda s: s.mark_sent([command.id]))

    def ack(device_id: str, command_id: str, ok: bool = True, code: str | None = None) -> Any:
        return in_tx(platform, lambda s: s.record_ack(device_id, command_id, ok, code), counters)

    assert await ack(theirs, command.id) is None  # another device cannot ack my command
    assert (await row(platform, command.id)).status == CommandStatus.SENT
    assert await ack(mine, "00000000-0000-4000-8000-000000000000") is None
    assert await ack(mine, unsent.id) is None  # never sent: the device cannot know it
    assert await ack("not-a-device-id", command.id) is None
    assert counters.ignored_acks == 4

    first = await ack(mine, command.id)
    clock.advance(seconds=5)
    second = await ack(mine, command.id)
    changed_mind = await ack(mine, command.id, False, "jammed")
    for again in (second, changed_mind):
        assert again is not None
        assert (again.status, again.acked_at) == (CommandStatus.ACKED, first.acked_at)
    assert counters.duplicate_acks == 2
    assert counters.acked == 1
    assert len(await audit_entries(platform, "devices.command.acked")) == 1
    assert await audit_entries(platform, "devices.command.failed") == []


# --- cancel -------------------------------------------------------------------------------------
@pytest.mark.req("R11", "L17", "R14")
async def test_only_queued_commands_can_be_cancelled(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id
    queued = await enqueue(platform, w)
    sent = await enqueue(platform, w)
    await in_tx(platform, lambda s: s.mark_sent([sent.id]))

    async def cancel(t: Tenant, command_id: str) -> DeviceCommand:
        return await as_device_principal(
            platform,
            t.token,
            lambda d, p: CommandService(platform, d.session).cancel(p, command_id),
        )

    cancelled = await cancel(w.a, queued.id)
    assert (cancelled.status, cancelled.result_code) == (CommandStatus.CANCELLED, "cancelled")
    assert await peek(platform, device_id, new_session=True) == [sent.id]
    await expect_code(cancel(w.a, queued.id), "command_not_cancellable", 409)
    await expect_code(cancel(w.a, sent.id), "command_not_cancellable", 409)
    await expect_code(cancel(w.b, sent.id), "not_found", 404)  # another org's command
    # An ack for a cancelled command (never sent) is ignored.
    assert await in_tx(platform, lambda s: s.record_ack(device_id, queued.id, True, None)) is None
    (entry,) = await audit_entries(platform, "devices.command.cancelled")
    assert entry.actor == f"account:{w.a.admin.id}"


# --- outbox ------------------------------------------------------------------------------------
@pytest.mark.req("R11", "L17")
async def test_rolled_back_enqueue_leaves_nothing_to_send(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id

    class Abort(Exception):
        pass

    async def enqueue_then_fail() -> None:
        async with platform.db.transaction() as session:
            await CommandService(platform, session).enqueue(
                "system", None, device_id, "unlock", UNLOCK, 600
            )
            raise Abort

    with pytest.raises(Abort):
        await enqueue_then_fail()
    assert await peek(platform, device_id, new_session=True) == []
    assert await audit_entries(platform, "devices.command.queued") == []
    # The next command still gets number 1: nothing of the rolled-back one remains.
    assert (await enqueue(platform, w)).seq == 1


@pytest.mark.req("R11", "R16")
async def test_queued_command_survives_a_restart(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id
    command = await enqueue(platform, w)
    await platform.db.dispose()  # the process ends

    db = Database(platform.settings.resolved_database_url)
    restarted = Platform(settings=platform.settings, db=db, keys=platform.keys, clock=clock)
    try:
        delivered = await deliver(restarted, device_id, new_session=True)
        assert [command_message(c) for c in delivered] == [
            {
                "t": "cmd",
                "id": command.id,
                "name": "unlock",
                "args": UNLOCK,
                "exp": int(command.expires_at.timestamp() * 1000),
            }
        ]
    finally:
        await db.dispose()


# --- which devices take commands ----------------------------------------------------------------
@pytest.mark.req("R11", "L14")
async def test_revoked_decommissioned_unclaimed_and_foreign_devices_refuse_commands(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    (unclaimed,) = await manufacture(platform, tmp_path)
    a_org = w.a.admin.org_id

    def enqueue_to(device_id: str, org_id: str | None = a_org) -> Awaitable[DeviceCommand]:
        return in_tx(platform, lambda s: s.enqueue("system", org_id, device_id, "unlock", {}, 60))

    await expect_code(enqueue_to(w.devices[2].device_id), "not_found", 404)  # org B's device
    await expect_code(enqueue_to("f" * 32), "not_found", 404)
    await expect_code(enqueue_to(unclaimed.device_id, None), "device_not_commandable", 409)

    queued = await enqueue(platform, w, 0)
    async with platform.db.transaction() as session:
        await DeviceService(platform, session).operator_lifecycle(
            w.devices[0].device_id, Status.REVOKED, "revoked", "compromised", actor="cli"
        )
        await DeviceService(platform, session).operator_lifecycle(
            w.devices[1].device_id, Status.DECOMMISSIONED, "decommissioned", None, actor="cli"
        )
    await expect_code(enqueue_to(w.devices[0].device_id), "device_not_commandable", 409)
    await expect_code(enqueue_to(w.devices[1].device_id), "device_not_commandable", 409)
    # What was queued before the revocation never reaches the revoked device.
    assert await peek(platform, w.devices[0].device_id, new_session=True) == []
    assert (await row(platform, queued.id)).status == CommandStatus.QUEUED


@pytest.mark.req("R11", "R14")
async def test_suspended_device_stores_commands_until_resumed(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id
    async with platform.db.transaction() as session:
        service = DeviceService(platform, session)
        await service.mark_online(device_id)
        await service.operator_lifecycle(
            device_id, Status.SUSPENDED, "suspended", "maintenance", actor="cli"
        )
    command = await enqueue(platform, w, 0)
    assert await peek(platform, device_id, new_session=True) == []
    async with platform.db.transaction() as session:
        await DeviceService(platform, session).operator_lifecycle(
            device_id, Status.ACTIVE, "resumed", None, actor="cli"
        )
    assert await peek(platform, device_id, new_session=True) == [command.id]


# --- hostile input ------------------------------------------------------------------------------
DEEP: dict[str, Any] = {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}


@pytest.mark.req("R16", "L16")
@pytest.mark.parametrize(
    ("name", "args", "ttl", "code"),
    [
        ("Unlock", {}, 60, "invalid_command"),
        ("1unlock", {}, 60, "invalid_command"),
        ("unlock!", {}, 60, "invalid_command"),
        ("u" * 65, {}, 60, "invalid_command"),
        ("unlock", [], 60, "invalid_command"),
        ("unlock", "x", 60, "invalid_command"),
        ("unlock", {"Bad Key": 1}, 60, "invalid_command"),
        ("unlock", {"ratio": 0.5}, 60, "invalid_command"),
        ("unlock", {"n": 1 << 60}, 60, "invalid_command"),
        ("unlock", {"s": "\ud800"}, 60, "invalid_command"),
        ("unlock", DEEP, 60, "invalid_command"),
        ("unlock", {"blob": "x" * MAX_ARGS_BYTES}, 60, "command_too_large"),
        ("unlock", {"blob": "x" * 40_000}, 60, "command_too_large"),
        ("unlock", {}, 0, "invalid_command"),
        ("unlock", {}, 8 * 24 * 3600, "invalid_command"),
        ("unlock", {}, True, "invalid_command"),
    ],
)
async def test_malformed_commands_are_refused_with_stable_codes(
    platform: Platform,
    clock: FixedClock,
    tmp_path: Path,
    name: str,
    args: Any,
    ttl: Any,
    code: str,
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    a = await tenant(platform, clock, "sa-a", "Org A")
    await claim(platform, a, made)
    await expect_code(
        in_tx(platform, lambda s: s.enqueue("system", None, made.device_id, name, args, ttl)),
        code,
    )
    assert await peek(platform, made.device_id) == []


@pytest.mark.req("R11", "L17", "R16")
async def test_argument_values_never_reach_the_audit_log_or_operation_records(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    device_id = w.devices[0].device_id
    secret = "pin-741852963"
    exact = {"pin": secret, "pad": "y" * (MAX_ARGS_BYTES - 40)}
    command = await enqueue(platform, w, name="credential.add", args=exact)
    assert len(command.args.encode()) <= MAX_ARGS_BYTES  # the limit itself is accepted
    await deliver(platform, device_id)
    await in_tx(platform, lambda s: s.record_ack(device_id, command.id, True, None))
    async with platform.db.transaction() as session:
        audit = (await session.execute(select(AuditEntry.details))).scalars().all()
        ops = (await session.execute(select(DeviceOperation.details))).scalars().all()
    assert audit
    assert ops
    assert not [text for text in (*audit, *ops) if secret in text or "yyyy" in text]


@pytest.mark.req("R11", "L15")
async def test_a_full_delivery_pass_visits_only_devices_with_something_to_do_now(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    w = await world(platform, clock, tmp_path)
    d0, d1 = w.devices[0].device_id, w.devices[1].device_id

    async def with_work() -> set[str]:
        return await in_tx(platform, lambda s: s.with_work([d0, d1]))

    async def send(device_id: str) -> list[str]:
        async def work(s: CommandService) -> list[str]:
            due = await s.deliverable(device_id)
            await s.mark_due_sent(due)
            return [c.id for c in due]

        return await in_tx(platform, work)

    assert await with_work() == set()
    first = await enqueue(platform, w, 0, ttl_seconds=60)
    assert await with_work() == {d0}  # queued
    assert await send(d0) == [first.id]
    sent = await row(platform, first.id)
    assert (sent.status, sent.attempts) == (CommandStatus.SENT, 1)
    assert await with_work() == set()  # waiting for its ack: nothing to do yet
    clock.advance(seconds=RETRY_INTERVAL_SECONDS)
    assert await with_work() == {d0}  # due again
    assert await send(d0) == [first.id]
    assert (await row(platform, first.id)).attempts == 2
    await in_tx(platform, lambda s: s.record_ack(d0, first.id, True, None))
    short = await enqueue(platform, w, 1, ttl_seconds=5)
    assert await send(d1) == [short.id]
    assert await with_work() == set()
    clock.advance(seconds=5)
    assert await with_work() == {d1}  # past its TTL: to be closed
    assert await send(d1) == []
    assert (await row(platform, short.id)).status == CommandStatus.EXPIRED
    assert await with_work() == set()
