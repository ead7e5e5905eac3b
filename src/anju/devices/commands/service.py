"""Device commands with store-and-forward: the outbox, delivery, retries, acks, expiry.

The gateway's loop for one device (docs/devices.md, "Commands")::

    async with db.transaction() as session:          # one transaction …
        svc = CommandService(platform, session)
        due = await svc.deliverable(device_id, new_session=just_connected)
        await svc.mark_due_sent(due)
    publish(command_message(c) for c in due)          # … then publish, in order

Marking before publishing makes delivery at-least-once (a crash after the commit only delays a
command until its retry is due) and lets ``cancel`` refuse anything that may be on its way.
The device executes each command id at most once and acks again on a repeat.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.audit import AuditLog, NewEntry
from anju.db import new_id
from anju.devices.command_models import DeviceCommand
from anju.devices.commands.repository import CommandsRepository
from anju.devices.commands.rules import (
    CANCELLED,
    COMMANDABLE,
    DEFAULT_MAX_ATTEMPTS,
    DEVICE_FAILED,
    EXPIRED,
    MAX_DELIVERABLE,
    NO_ACK,
    PENDING,
    RETRY_INTERVAL_SECONDS,
    CommandNotCancellable,
    CommandStatus,
    DeviceNotCommandable,
    check_args,
    check_max_attempts,
    check_name,
    check_result_code,
    check_ttl,
)
from anju.devices.commands.wakeup import announce_after_commit
from anju.devices.lifecycle import HANDSHAKE_STATUSES, HEX_ID
from anju.devices.permissions import require_device_manager, require_device_reader
from anju.devices.service import DeviceService, check_device_id, not_found
from anju.errors import InvalidInput, NotFound
from anju.platform import Platform

Details = dict[str, str | int | bool | None]
SWEEP_BATCH = 1000


@dataclass
class CommandCounters:
    """What happened to commands, for metrics (kept by the caller across transactions)."""

    queued: int = 0
    sent: int = 0
    acked: int = 0
    failed: int = 0
    expired: int = 0
    cancelled: int = 0
    duplicate_acks: int = 0  # an ack repeated for an already answered command
    late_acks: int = 0  # an ack after the command was given up (failed no_ack, expired)
    ignored_acks: int = 0  # unknown command, another device's, or never sent


@dataclass(frozen=True)
class DeviceAck:
    """One ``ack`` message of a device: the command it answers and the outcome."""

    device_id: str
    command_id: str
    ok: bool
    code: str | None


def _retry_due(command: DeviceCommand, *, retry_before: datetime, new_session: bool) -> bool:
    """What the repository's ``_retry_due`` condition says of a loaded command."""
    if command.sent_at is None:
        return False
    return new_session or command.sent_at <= retry_before


def command_not_found() -> NotFound:
    return NotFound("命令不存在 / no such command")


class CommandService:
    """Device commands of one transaction (the caller commits)."""

    def __init__(
        self,
        platform: Platform,
        session: AsyncSession,
        *,
        counters: CommandCounters | None = None,
        retry_interval_seconds: float = RETRY_INTERVAL_SECONDS,
    ) -> None:
        self.platform = platform
        self.session = session
        self.clock = platform.clock
        self.repo = CommandsRepository(session)
        self.audit = AuditLog(platform)
        self.counters = counters if counters is not None else CommandCounters()
        self.retry_interval = timedelta(seconds=retry_interval_seconds)

    # --- the outbox ------------------------------------------------------------------------
    async def enqueue(
        self,
        actor: str,
        org_id: str | None,
        device_id: str,
        name: str,
        args: Mapping[str, Any],
        ttl_seconds: int,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> DeviceCommand:
        """Queue a command in the caller's transaction (rolled back → never sent; committed →
        command delivery is woken at once, :mod:`anju.devices.commands.wakeup`).

        ``org_id`` scopes the call: a device of another organisation is "not found"; None is
        the platform operator (any device).
        """
        check_device_id(device_id)
        check_name(name)
        text = check_args(name, args)
        check_ttl(ttl_seconds)
        check_max_attempts(max_attempts)
        # Locking the device row serialises enqueues to it, so max(seq) + 1 is never taken twice.
        device = await self.repo.lock_device(device_id)
        if device is None or (org_id is not None and device.org_id != org_id):
            raise not_found()
        if device.status not in COMMANDABLE:
            raise DeviceNotCommandable(
                f"{device.status} 设备不接受命令 / a {device.status} device takes no commands",
                details={"status": device.status},
            )
        now = self.clock.now()
        command = await self.repo.insert_next(
            {
                "id": new_id(),
                "device_id": device.id,
                "org_id": device.org_id,
                "name": name,
                "args": text,
                "status": CommandStatus.QUEUED,
                "attempts": 0,
                "max_attempts": max_attempts,
                "actor": actor,
                "created_at": now,
                "expires_at": now + timedelta(seconds=ttl_seconds),
            }
        )
        details: Details = {
            "command": command.id,
            "name": name,
            "seq": command.seq,
            "ttl_seconds": ttl_seconds,
            "args_bytes": len(text.encode()),
            "online": device.online,
        }
        await DeviceService(self.platform, self.session).record_operation(
            device, actor=actor, operation="command.queued", details=details
        )
        await self._audit(command, "devices.command.queued", actor=actor, details=details)
        # The gateway holding the device sends it as soon as this transaction commits.
        await announce_after_commit(self.session, device.id)
        self.counters.queued += 1
        return command

    async def in_force(
        self, device_id: str, names: Sequence[str], args: Mapping[str, Any]
    ) -> DeviceCommand | None:
        """A command of one of ``names`` with exactly ``args`` that still stands: queued, sent or
        acknowledged as done (not failed, cancelled or expired), within its time to live. What a
        device may fetch on the strength of an offer (e.g. ``bio.load``) is checked with this."""
        text = check_args(names[0], args)
        statuses = [*PENDING, CommandStatus.ACKED]
        return await self.repo.in_force(device_id, names, text, statuses, self.clock.now())

    # --- delivery (the gateway) ------------------------------------------------------------
    async def deliverable(
        self, device_id: str, limit: int = 50, *, new_session: bool = False
    ) -> list[DeviceCommand]:
        """Commands to send now, in sequence order: queued ones and unacked ones due again.

        Expired ones are marked expired and those sent ``max_attempts`` times without an ack
        are marked failed; neither is returned. ``new_session``: the device has just
        connected, so commands sent on its earlier sessions are due at once (and go out before
        newer ones, keeping the order). The rows stay locked until the caller commits.
        """
        check_device_id(device_id)
        if not 1 <= limit <= MAX_DELIVERABLE:
            raise InvalidInput(f"limit: 1–{MAX_DELIVERABLE}")
        now = self.clock.now()
        retry_before = now - self.retry_interval
        # Usually one statement: every pending command of the device (locked) with the
        # device's status, sorted here into those to close and those to send.
        pending, status = await self.repo.pending_of_device(device_id, limit=SWEEP_BATCH)
        if len(pending) >= SWEEP_BATCH:  # a long backlog: let the database pick
            await self._close_due(now, retry_before, device_id=device_id, new_session=new_session)
            device = await self.repo.device(device_id)
            if device is None or device.status not in HANDSHAKE_STATUSES:
                return []
            rows = await self.repo.due_for_delivery(
                device_id, now, retry_before, new_session=new_session, limit=limit
            )
            return list(rows)
        due = partial(_retry_due, retry_before=retry_before, new_session=new_session)
        await self._close(
            [
                c
                for c in pending
                if c.expires_at <= now
                or (c.status == CommandStatus.SENT and c.attempts >= c.max_attempts and due(c))
            ],
            now,
        )
        if status not in HANDSHAKE_STATUSES:
            return []  # only a device that may connect receives anything
        sendable = [
            c
            for c in pending
            if c.expires_at > now
            and (
                c.status == CommandStatus.QUEUED
                or (c.status == CommandStatus.SENT and c.attempts < c.max_attempts and due(c))
            )
        ]
        return sendable[:limit]

    async def with_work(self, device_ids: Sequence[str]) -> set[str]:
        """Of ``device_ids``, the devices for which :meth:`deliverable` (on a continuing
        session) has something to send or to close now."""
        now = self.clock.now()
        found: set[str] = set()
        for start in range(0, len(device_ids), 500):
            chunk = device_ids[start : start + 500]
            found |= await self.repo.with_work(chunk, now, now - self.retry_interval)
        return found

    async def mark_sent(self, command_ids: list[str]) -> None:
        """Record that these commands are about to be published: attempts += 1, sent_at = now.

        Commands no longer pending or past their TTL are left alone (never sent after expiry).
        """
        if not command_ids:
            return
        now = self.clock.now()
        self._sent(await self.repo.pending_by_ids(command_ids, now), now)
        await self.session.flush()

    async def mark_due_sent(self, due: Sequence[DeviceCommand]) -> None:
        """:meth:`mark_sent` for the rows :meth:`deliverable` returned in this transaction: they
        are locked and loaded already, so they are not read again."""
        if not due:
            return
        now = self.clock.now()
        self._sent((c for c in due if c.status in PENDING and c.expires_at > now), now)
        await self.session.flush()

    def _sent(self, commands: Iterable[DeviceCommand], now: datetime) -> None:
        for command in commands:
            command.status = CommandStatus.SENT
            command.attempts += 1
            command.sent_at = now
            self.counters.sent += 1

    async def record_ack(
        self, device_id: str, command_id: str, ok: bool, code: str | None
    ) -> DeviceCommand | None:
        """Record a device's ack; idempotent. Acks that do not fit a sent command are ignored.

        Returns the command, or None when the ack was ignored (unknown id, another device's
        command, or one never sent) — ignored acks are counted, not stored.
        """
        return (await self.record_acks([DeviceAck(device_id, command_id, ok, code)]))[0]

    async def record_acks(self, acks: Sequence[DeviceAck]) -> list[DeviceCommand | None]:
        """:meth:`record_ack` for many acks in the caller's transaction, with one audit append
        for all of them (the gateway batches the acks that arrive together). An ack with an
        invalid code raises before anything is recorded."""
        for ack in acks:
            check_result_code(ack.code)
        # The commands of the whole batch in one locking read, updated in one flush.
        valid = [a for a in acks if HEX_ID.match(a.device_id) and len(a.command_id) <= 64]
        found = await self.repo.commands_for_update([a.command_id for a in valid])
        by_id = {c.id: c for c in found}
        loaded = {id(a): by_id.get(a.command_id) for a in valid}
        entries: list[NewEntry] = []
        results = [self._apply_ack(ack, loaded.get(id(ack)), entries) for ack in acks]
        await self.session.flush()
        if entries:
            await self.audit.record_at_commit(self.session, entries)
        return results

    def _apply_ack(
        self, ack: DeviceAck, command: DeviceCommand | None, entries: list[NewEntry]
    ) -> DeviceCommand | None:
        device_id = ack.device_id
        if command is None or command.device_id != device_id or command.attempts == 0:
            self.counters.ignored_acks += 1
            return None
        if command.acked_at is not None:
            self.counters.duplicate_acks += 1  # answered before: keep the first answer
            return command
        late = command.status in (CommandStatus.FAILED, CommandStatus.EXPIRED)
        if late:
            # The device did get it after all: what it says is the truth about the command.
            self.counters.late_acks += 1
        now = self.clock.now()
        command.acked_at = now
        command.finished_at = now
        command.status = CommandStatus.ACKED if ack.ok else CommandStatus.FAILED
        command.result_code = None if ack.ok else (ack.code or DEVICE_FAILED)
        details = self._details(command)
        if late:
            details["late"] = True
        actor = f"device:{device_id}"
        target = f"device:{command.device_id}"
        if ack.ok:
            self.counters.acked += 1
            entries.append(
                NewEntry("devices.command.acked", actor, command.org_id, target, details=details)
            )
        else:
            self.counters.failed += 1
            details["code"] = command.result_code
            entries.append(
                NewEntry(
                    "devices.command.failed", actor, command.org_id, target, "failure", details
                )
            )
        return command

    async def expire_due(self) -> int:
        """Close every command whose time is up (expired) or whose sends ran out (failed).

        Handles at most one batch of 1000 per call; returns how many it closed (call again
        while it returns a full batch).
        """
        now = self.clock.now()
        return await self._close_due(now, now - self.retry_interval)

    async def _close_due(
        self,
        now: datetime,
        retry_before: datetime,
        *,
        device_id: str | None = None,
        new_session: bool = False,
    ) -> int:
        rows = await self.repo.due_to_close(
            now, retry_before, device_id=device_id, new_session=new_session, limit=SWEEP_BATCH
        )
        return await self._close(rows, now)

    async def _close(self, rows: Sequence[DeviceCommand], now: datetime) -> int:
        """Close commands past their TTL as expired and the others (out of sends) as failed."""
        entries = []
        for command in rows:
            details = self._details(command)
            command.finished_at = now
            if command.expires_at <= now:
                command.status = CommandStatus.EXPIRED
                command.result_code = EXPIRED
                self.counters.expired += 1
                action, outcome = "devices.command.expired", "failure"
            else:
                command.status = CommandStatus.FAILED
                command.result_code = NO_ACK
                self.counters.failed += 1
                details["code"] = NO_ACK
                action, outcome = "devices.command.failed", "failure"
            entries.append(
                NewEntry(
                    action=action,
                    actor="system",
                    org_id=command.org_id,
                    target=f"device:{command.device_id}",
                    outcome=outcome,
                    details=details,
                )
            )
        if entries:
            await self.session.flush()
            await self.audit.record_at_commit(self.session, entries)
        return len(entries)

    # --- for operators (HTTP) --------------------------------------------------------------
    async def submit(
        self,
        principal: Principal,
        device_id: str,
        name: str,
        args: Mapping[str, Any],
        ttl_seconds: int,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> DeviceCommand:
        """Queue a command to a device of the caller's organisation (second factor required)."""
        require_device_manager(self.platform, self.session, principal)
        if principal.org_id is None or not HEX_ID.match(device_id):
            raise not_found()  # platform-level accounts command devices at the CLI
        return await self.enqueue(
            principal.actor,
            principal.org_id,
            device_id,
            name,
            args,
            ttl_seconds,
            max_attempts=max_attempts,
        )

    async def cancel(self, principal: Principal, command_id: str) -> DeviceCommand:
        """Cancel a command that has not been sent yet (a sent one may already have run)."""
        require_device_manager(self.platform, self.session, principal)
        command = await self._visible(principal, command_id, for_update=True)
        if command.status != CommandStatus.QUEUED:
            raise CommandNotCancellable(
                f"{command.status} 命令不能取消 / a {command.status} command cannot be cancelled",
                details={"status": command.status},
            )
        details = await self._cancel(command, actor=principal.actor)
        device = await self.repo.device(command.device_id)
        if device is not None:
            await DeviceService(self.platform, self.session).record_operation(
                device, actor=principal.actor, operation="command.cancelled", details=details
            )
        return command

    async def _cancel(self, command: DeviceCommand, *, actor: str) -> Details:
        """Close a queued command as cancelled (audited); its audit details."""
        command.status = CommandStatus.CANCELLED
        command.result_code = CANCELLED
        command.finished_at = self.clock.now()
        await self.session.flush()
        details = self._details(command)
        await self._audit(command, "devices.command.cancelled", actor=actor, details=details)
        self.counters.cancelled += 1
        return details

    async def withdraw(self, command_ids: list[str], *, actor: str) -> set[str]:
        """Cancel those of ``command_ids`` that are still queued, for the platform code that
        queued them (a firmware rollout pausing); sent ones are left alone. The ids cancelled."""
        cancelled: set[str] = set()
        for command_id in command_ids:
            command = await self.repo.command(command_id, for_update=True)
            if command is not None and command.status == CommandStatus.QUEUED:
                await self._cancel(command, actor=actor)
                cancelled.add(command.id)
        return cancelled

    async def get(self, principal: Principal, command_id: str) -> DeviceCommand:
        """One command of the caller's organisation (404 for any other)."""
        require_device_reader(principal)
        return await self._visible(principal, command_id)

    async def list_for_device(
        self,
        principal: Principal,
        device_id: str,
        *,
        status: CommandStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DeviceCommand]:
        """Commands of a device of the caller's organisation, newest first."""
        require_device_reader(principal)
        device = await self.repo.device(device_id) if HEX_ID.match(device_id) else None
        if device is None or principal.org_id is None or device.org_id != principal.org_id:
            raise not_found()
        rows = await self.repo.of_device(
            device.id, principal.org_id, status, limit=limit, offset=offset
        )
        return list(rows)

    # --- helpers ---------------------------------------------------------------------------
    async def _visible(
        self, principal: Principal, command_id: str, *, for_update: bool = False
    ) -> DeviceCommand:
        command = (
            await self.repo.command(command_id, for_update=for_update)
            if len(command_id) <= 36
            else None
        )
        if command is None or principal.org_id is None or command.org_id != principal.org_id:
            raise command_not_found()
        return command

    @staticmethod
    def _details(command: DeviceCommand) -> Details:
        # Names and numbers only: argument values may hold personal or key material.
        return {
            "command": command.id,
            "name": command.name,
            "seq": command.seq,
            "attempts": command.attempts,
        }

    async def _audit(
        self,
        command: DeviceCommand,
        action: str,
        *,
        actor: str = "system",
        outcome: str = "success",
        details: Details | None = None,
    ) -> None:
        target = f"device:{command.device_id}"
        await self.audit.record_at_commit(
            self.session, [NewEntry(action, actor, command.org_id, target, outcome, details)]
        )
