"""Per-lock delivery of credentials through the command outbox, and reconciliation.

A row of ``access_deliveries`` is the truth about one credential on one lock. The gateway's
sending shows as ``sent`` (folded in from the command row); only a verified signed receipt
makes it ``installed`` / ``refused`` / ``removed`` (:mod:`.receipts`). When a command ends
without a receipt (no ack, or its time to live of at most 7 days ran out while the lock was
offline), :meth:`Deliveries.reconcile` queues it again — so a lock offline for longer than any
command lives still converges when it comes back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from anju.access.context import AccessContext, Details
from anju.access.keys import access_certificate
from anju.access.models import AccessCredential, AccessDelivery, AccessLockOperation
from anju.access.rules import COMMAND_TTL_SECONDS, CredentialStatus, DeliveryState
from anju.devices.command_models import DeviceCommand
from anju.devices.commands import CommandStatus, DeviceNotCommandable
from anju.devices.commands.rules import EXPIRED, NO_ACK
from anju.protocol.access import DROP_COMMAND, PUT_COMMAND, encode_signer

#: Commands that ended with nothing known about the lock: worth sending again.
_ENDED = frozenset({CommandStatus.FAILED, CommandStatus.EXPIRED, CommandStatus.CANCELLED})
_RETRYABLE_CODES = frozenset({NO_ACK, EXPIRED, None})
RECONCILE_BATCH = 500


def _retryable(command: DeviceCommand) -> bool:
    return command.status == CommandStatus.EXPIRED or command.result_code in _RETRYABLE_CODES


class Deliveries(AccessContext):
    """Queue credentials to locks and keep their per-lock state honest."""

    async def enqueue(
        self, actor: str, org_id: str, device_id: str, name: str, args: Mapping[str, Any]
    ) -> str | None:
        """Queue one access command; None when the lock no longer takes commands."""
        try:
            command = await self.commands.enqueue(
                actor, org_id, device_id, name, args, COMMAND_TTL_SECONDS
            )
        except DeviceNotCommandable:
            return None
        return command.id

    def put_args(self, credential_id: str, box: str) -> dict[str, str]:
        certificate = access_certificate(
            self.platform.keys, self.platform.settings.audit_origin, self.now_ms() // 1000
        )
        return {"cred": credential_id, "box": box, "cert": encode_signer(certificate)}

    async def put(
        self,
        actor: str,
        credential: AccessCredential,
        device_id: str,
        box: str,
        *,
        digest: str | None = None,
        row: AccessDelivery | None = None,
    ) -> AccessDelivery:
        """Queue ``access.put`` of a sealed box; the row goes (back) to ``queued``."""
        now = self.clock.now()
        if row is None:
            row = AccessDelivery(
                credential_id=credential.id,
                device_id=device_id,
                org_id=credential.org_id,
                passcode_digest=digest,
                state=DeliveryState.QUEUED,
                queued_at=now,
                updated_at=now,
            )
            self.repo.add(row)
        row.box = box
        args = self.put_args(credential.id, box)
        command_id = await self.enqueue(actor, credential.org_id, device_id, PUT_COMMAND, args)
        self._set(row, DeliveryState.QUEUED if command_id else DeliveryState.FAILED, command_id)
        if command_id is None:
            row.code = "device_unavailable"
        row.queued_at = now
        await self.session.flush()
        return row

    async def drop(self, actor: str, credential: AccessCredential, row: AccessDelivery) -> None:
        """Queue ``access.drop`` unless the lock never got (or already lost) the credential."""
        if row.state in (DeliveryState.REMOVED, DeliveryState.REFUSED):
            return
        command_id = await self.enqueue(
            actor, credential.org_id, row.device_id, DROP_COMMAND, {"cred": credential.id}
        )
        self._set(row, DeliveryState.REMOVING, command_id)
        if command_id is None:
            row.code = "device_unavailable"
        await self.session.flush()

    async def lock_operation(
        self,
        actor: str,
        org_id: str,
        device_id: str,
        name: str,
        args: Mapping[str, Any],
        *,
        subject_id: str | None = None,
        freeze_id: str | None = None,
    ) -> AccessLockOperation | None:
        """Queue a lock-wide command (freeze, unfreeze, revoke, wipe) and track its receipt."""
        command_id = await self.enqueue(actor, org_id, device_id, name, args)
        if command_id is None:
            return None
        row = AccessLockOperation(
            command_id=command_id,
            device_id=device_id,
            org_id=org_id,
            op=name.removeprefix("access."),
            subject_id=subject_id,
            freeze_id=freeze_id,
            state="queued",
            created_at=self.clock.now(),
        )
        self.repo.add(row)
        await self.session.flush()
        return row

    def _set(self, row: AccessDelivery, state: DeliveryState, command_id: str | None) -> None:
        row.state = state
        row.command_id = command_id
        row.code = None
        row.updated_at = self.clock.now()

    # --- what the outbox says --------------------------------------------------------------
    def fold(self, row: AccessDelivery, command: DeviceCommand | None) -> None:
        """Bring ``row`` up to date with its command: sent, or failed when it ended with no
        receipt. Never "installed": only a receipt says that."""
        if command is None:
            return
        if row.state == DeliveryState.QUEUED and command.status in (
            CommandStatus.SENT,
            CommandStatus.ACKED,
        ):
            row.state = DeliveryState.SENT
            row.updated_at = self.clock.now()
        elif row.state in (DeliveryState.QUEUED, DeliveryState.SENT) and command.status in _ENDED:
            row.state = DeliveryState.FAILED
            row.code = command.result_code or str(command.status)
            row.updated_at = self.clock.now()

    async def view(self, credential_id: str) -> Sequence[AccessDelivery]:
        """The credential's rows, folded with their commands."""
        rows = await self.repo.deliveries(credential_id, for_update=True)
        commands = await self.repo.commands([r.command_id for r in rows if r.command_id])
        for row in rows:
            self.fold(row, commands.get(row.command_id or ""))
        await self.session.flush()
        return rows

    async def reconcile(self, device_id: str | None = None, limit: int = RECONCILE_BATCH) -> int:
        """Re-queue what locks must still get: puts of active credentials and drops whose
        command ended without a receipt. ``device_id``: one lock (e.g. just reconnected).
        Returns how many commands it queued."""
        states = [DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.FAILED]
        states.append(DeliveryState.REMOVING)
        queued = 0
        for row, command in await self.repo.deliveries_with_commands(
            states, device_id=device_id, limit=limit
        ):
            if command is None and row.code == "device_unavailable":
                continue  # the lock takes no commands any more: nothing can reach it
            if command is not None and command.status not in _ENDED:
                self.fold(row, command)
                continue
            if command is not None and not _retryable(command):
                self.fold(row, command)  # the lock answered "no": not worth repeating
                continue
            credential = await self.repo.credential(row.credential_id)
            if credential is None:
                continue
            if row.state == DeliveryState.REMOVING:
                await self.drop(SYSTEM_RECONCILE, credential, row)
                queued += 1
            elif credential.status == CredentialStatus.ACTIVE and row.box is not None:
                await self.put(SYSTEM_RECONCILE, credential, row.device_id, row.box, row=row)
                queued += 1
        if queued:
            details: Details = {"requeued": queued, "device": device_id}
            await self.audit.record(
                self.session,
                action="access.delivery.reconciled",
                actor=SYSTEM_RECONCILE,
                details=details,
            )
        return queued


SYSTEM_RECONCILE = "system:access-reconcile"
