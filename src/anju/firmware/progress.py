"""How a running rollout moves: stages, offers through the command outbox, device reports,
automatic pause on failures, completion (docs/firmware.md, "Staged rollout").

Every change happens with the rollout row locked (``SELECT … FOR UPDATE``; SQLite serialises
writers), so reports arriving in several gateway processes and the periodic tick never advance
a rollout twice. Offers are ``ota.update`` commands queued with
:meth:`anju.devices.commands.CommandService.enqueue` in the same transaction: the existing
store-and-forward outbox delivers them (to offline devices when they connect), and nothing is
sent for a change that rolls back.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import AuditLog
from anju.devices.commands import CommandService, CommandStatus
from anju.devices.models import Device
from anju.devices.service import DeviceService
from anju.errors import AnjuError
from anju.firmware.models import FirmwarePackage, FirmwareRollout, FirmwareRolloutDevice
from anju.firmware.repository import FirmwareRepository
from anju.firmware.rules import (
    COMMAND_NAME,
    FETCHING,
    FINISHED,
    PAUSED_FAILURES,
    PAUSED_STALLED,
    PROGRESS,
    REPORTED,
    SERVING_ROLLOUTS,
    DeviceState,
    RolloutStatus,
    check_result_code,
    meets_success_threshold,
    over_failure_threshold,
)
from anju.platform import Platform
from anju.protocol.firmware import Offer, SignedManifest

Details = dict[str, str | int | bool | None]
SYSTEM = "system"
#: A command that ended without the device ever reporting: its outcome is the device's.
_COMMAND_ENDED = frozenset({CommandStatus.FAILED, CommandStatus.EXPIRED, CommandStatus.CANCELLED})


@dataclass
class ProgressCounters:
    """What device reports did (kept by the long-lived caller, e.g. the gateway)."""

    reports: int = 0
    ignored_reports: int = 0
    offers: int = 0
    pauses: int = 0
    by_state: Counter[str] = field(default_factory=Counter)


def offer_args(package: FirmwarePackage) -> dict[str, Any]:
    """The ``ota.update`` arguments offering ``package`` (the device verifies them itself)."""
    signed = SignedManifest.parse(package.manifest, package.signer_certificate, package.signature)
    return Offer(package.id, signed).to_args()


class RolloutProgress:
    """Moves rollouts of one transaction (the caller commits)."""

    def __init__(
        self,
        platform: Platform,
        session: AsyncSession,
        *,
        counters: ProgressCounters | None = None,
    ) -> None:
        self.platform = platform
        self.session = session
        self.clock = platform.clock
        self.repo = FirmwareRepository(session)
        self.commands = CommandService(platform, session)
        self.audit = AuditLog(platform)
        self.counters = counters if counters is not None else ProgressCounters()

    # --- the state machine -----------------------------------------------------------------
    async def evaluate(self, rollout: FirmwareRollout) -> None:
        """Bring a rollout (locked by the caller) up to date: fold in commands that ended
        without a report, then pause, advance a stage, or complete, as the counts say."""
        await self._reconcile(rollout)
        stages = json.loads(rollout.stages)
        while rollout.status == RolloutStatus.RUNNING:
            total, updated, failed, unfinished = await self.started_counts(rollout)
            if rollout.current_stage > 0:
                if over_failure_threshold(
                    failed, rollout.accepted_failures, total, rollout.failure_threshold_pct
                ):
                    await self.pause(rollout, actor=SYSTEM, reason=PAUSED_FAILURES)
                    return
                if rollout.current_stage >= len(stages):  # the last stage: nothing to spread to
                    if unfinished == 0:
                        await self._complete(rollout, total, updated, failed)
                    return
                if not meets_success_threshold(
                    updated, rollout.accepted_failures, total, rollout.success_threshold_pct
                ):
                    if unfinished == 0:  # everyone answered and the stage still falls short
                        await self.pause(rollout, actor=SYSTEM, reason=PAUSED_STALLED)
                    return
            rollout.current_stage += 1
            offered = await self.dispatch_pending(rollout)
            await self.audit_rollout(
                rollout,
                "firmware.rollout.stage_started",
                actor=SYSTEM,
                details={"stage": rollout.current_stage, "offers": offered},
            )

    async def dispatch_pending(self, rollout: FirmwareRollout) -> int:
        """Offer the package to every pending device of the started stages (one command each)."""
        package = await self.repo.package(rollout.package_id)
        if package is None:  # pragma: no cover - a foreign key keeps it
            return 0
        args = offer_args(package)
        now = self.clock.now()
        offered = 0
        rows = await self.repo.rows(
            rollout.id,
            states=[DeviceState.PENDING],
            max_stage=rollout.current_stage,
            for_update=True,
        )
        for row in rows:
            try:
                command = await self.commands.enqueue(
                    SYSTEM,
                    None,
                    row.device_id,
                    COMMAND_NAME,
                    args,
                    rollout.command_ttl_seconds,
                )
            except AnjuError as exc:  # revoked or decommissioned since the rollout was made
                await self._finish(rollout, row, DeviceState.FAILED, exc.code, package)
                continue
            row.state = DeviceState.SENT
            row.command_id = command.id
            row.sent_at = row.updated_at = now
            offered += 1
        self.counters.offers += offered
        await self.session.flush()
        return offered

    async def withdraw(self, rollout: FirmwareRollout, *, to: DeviceState, actor: str) -> int:
        """Take back offers not delivered yet (queued commands are cancelled): their devices go
        back to ``pending`` (pause) or to ``cancelled`` (cancel, which also ends pending ones)."""
        states = [DeviceState.SENT] + ([DeviceState.PENDING] if to != DeviceState.PENDING else [])
        rows = await self.repo.rows(rollout.id, states=states, for_update=True)
        queued = [r.command_id for r in rows if r.state == DeviceState.SENT and r.command_id]
        cancelled = await self.commands.withdraw(queued, actor=actor)
        now = self.clock.now()
        changed = 0
        for row in rows:
            if row.state == DeviceState.SENT and row.command_id not in cancelled:
                continue  # already delivered: the device may be working on it
            row.state = to
            row.command_id = None if to == DeviceState.PENDING else row.command_id
            row.updated_at = now
            row.finished_at = now if to in FINISHED else None
            changed += 1
        await self.session.flush()
        return changed

    async def pause(self, rollout: FirmwareRollout, *, actor: str, reason: str) -> None:
        """Stop offering (undelivered offers are taken back); devices already at work finish."""
        rollout.status = RolloutStatus.PAUSED
        rollout.paused_reason = reason
        rollout.updated_at = self.clock.now()
        withdrawn = await self.withdraw(rollout, to=DeviceState.PENDING, actor=actor)
        self.counters.pauses += 1
        total, updated, failed, _ = await self.started_counts(rollout)
        await self.audit_rollout(
            rollout,
            "firmware.rollout.paused",
            actor=actor,
            outcome="success" if actor != SYSTEM else "failure",
            details={
                "reason": reason,
                "stage": rollout.current_stage,
                "devices": total,
                "updated": updated,
                "failed": failed,
                "withdrawn": withdrawn,
            },
        )

    async def _complete(
        self, rollout: FirmwareRollout, total: int, updated: int, failed: int
    ) -> None:
        now = self.clock.now()
        rollout.status = RolloutStatus.COMPLETED
        rollout.finished_at = rollout.updated_at = now
        await self.audit_rollout(
            rollout,
            "firmware.rollout.completed",
            actor=SYSTEM,
            details={"devices": total, "updated": updated, "failed": failed},
        )

    async def started_counts(self, rollout: FirmwareRollout) -> tuple[int, int, int, int]:
        """(devices, updated, failed, unfinished) among the started stages."""
        total = updated = failed = unfinished = 0
        for stage, state, n in await self.repo.state_counts(rollout.id):
            if stage > rollout.current_stage:
                continue
            total += n
            if state == DeviceState.UPDATED:
                updated += n
            elif state == DeviceState.FAILED:
                failed += n
            elif state not in FINISHED:
                unfinished += n
        return total, updated, failed, unfinished

    async def _reconcile(self, rollout: FirmwareRollout) -> None:
        """Devices still at ``sent`` whose command ended (refused, expired, never acked, cancelled
        by an operator) failed with the command's code: no report will ever come."""
        package = await self.repo.package(rollout.package_id)
        for row, command in await self.repo.sent_rows_with_commands(rollout.id):
            if command.status in _COMMAND_ENDED:
                code = command.result_code or str(command.status)
                await self._finish(rollout, row, DeviceState.FAILED, code, package)

    # --- device reports (the gateway) ------------------------------------------------------
    async def record_report(
        self, device_id: str, package_id: str, state: str, code: str | None
    ) -> bool:
        """Apply a device's ``fw_state``; False when it fits no unfinished offer (ignored).

        Reports only move a device forward; ``failed`` ends it with the device's code. The
        rollout is then evaluated (a failure may pause it, a success may start the next stage).
        """
        self.counters.reports += 1
        target = REPORTED.get(state)
        check_result_code(code)
        found = await self.repo.open_row_for_report(device_id, package_id)
        if target is None or found is None:
            self.counters.ignored_reports += 1
            return False
        rollout = await self.repo.rollout(found[1].id, for_update=True)
        row = await self.repo.row(found[1].id, device_id)
        if (
            rollout is None
            or row is None
            or row.state in FINISHED
            or row.state == DeviceState.PENDING
        ):
            self.counters.ignored_reports += 1  # finished, or never offered the package
            return False
        self.counters.by_state[state] += 1
        if target == DeviceState.FAILED:
            package = await self.repo.package(package_id)
            await self._finish(rollout, row, target, code or "failed", package)
        elif PROGRESS[target] > PROGRESS[row.state]:
            if target == DeviceState.UPDATED:
                package = await self.repo.package(package_id)
                await self._finish(rollout, row, target, None, package)
            else:
                row.state = target
                row.updated_at = self.clock.now()
        else:
            return True  # a repeat or a late intermediate report: nothing new
        await self.session.flush()
        if rollout.status == RolloutStatus.RUNNING:
            await self.evaluate(rollout)
        return True

    async def _finish(
        self,
        rollout: FirmwareRollout,
        row: FirmwareRolloutDevice,
        state: DeviceState,
        code: str | None,
        package: FirmwarePackage | None,
    ) -> None:
        """A device is done in this rollout: updated, or failed with ``code`` (audited, and an
        operation record on the device)."""
        now = self.clock.now()
        row.state = state
        row.code = code
        row.updated_at = row.finished_at = now
        details: Details = {
            "rollout": rollout.id,
            "package": rollout.package_id,
            "version": package.version if package is not None else None,
        }
        if code is not None:
            details["code"] = code
        device = await self.session.get(Device, row.device_id)
        operation = f"firmware.{state}"
        if device is not None:
            await DeviceService(self.platform, self.session).record_operation(
                device,
                actor=f"device:{row.device_id}",
                operation=operation,
                outcome="success" if state == DeviceState.UPDATED else "failure",
                details=details,
            )
        await self.audit.record(
            self.session,
            action=f"firmware.device.{state}",
            actor=f"device:{row.device_id}",
            org_id=device.org_id if device is not None else rollout.org_id,
            target=f"device:{row.device_id}",
            outcome="success" if state == DeviceState.UPDATED else "failure",
            details=details,
        )
        await self.session.flush()

    # --- for the gateway -------------------------------------------------------------------
    async def is_offered(self, device_id: str, package_id: str) -> bool:
        """Whether the device may fetch chunks of the package now (a serving rollout offered it
        and the device has not finished): cancelled rollouts stop serving at once."""
        return await self.repo.offered(
            device_id, package_id, list(SERVING_ROLLOUTS), list(FETCHING)
        )

    async def image(self, package_id: str) -> bytes | None:
        return await self.repo.image(package_id)

    async def tick(self, limit: int = 50) -> int:
        """Evaluate running and paused rollouts (commands may have ended since); how many."""
        ids = await self.repo.ticking_rollout_ids(limit)
        for rollout_id in ids:
            # Another process evaluating it right now is as good as doing it here.
            rollout = await self.repo.rollout(rollout_id, for_update=True, skip_locked=True)
            if rollout is None:
                continue
            if rollout.status == RolloutStatus.RUNNING:
                await self.evaluate(rollout)
            elif rollout.status == RolloutStatus.PAUSED:
                await self._reconcile(rollout)
            rollout.updated_at = self.clock.now()
        return len(ids)

    async def audit_rollout(
        self,
        rollout: FirmwareRollout,
        action: str,
        *,
        actor: str,
        outcome: str = "success",
        details: Details | None = None,
    ) -> None:
        await self.audit.record(
            self.session,
            action=action,
            actor=actor,
            org_id=rollout.org_id,
            target=f"firmware-rollout:{rollout.id}",
            outcome=outcome,
            details={"rollout": rollout.id, **(details or {})},
        )
