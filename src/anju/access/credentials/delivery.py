"""Per-lock delivery of credentials through the command outbox, and reconciliation.

A row of ``access_deliveries`` is the truth about one credential on one lock. The gateway's
sending shows as ``sent`` (folded in from the command row); only a verified signed receipt
makes it ``installed`` / ``refused`` / ``removed`` (:mod:`.receipts`). When a command ends
without a receipt (no ack, or its time to live of at most 7 days ran out while the lock was
offline), :meth:`Deliveries.reconcile` queues it again — so a lock offline for longer than any
command lives still converges when it comes back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from anju.access.context import AccessContext, Details
from anju.access.keys import access_certificate
from anju.access.models import (
    AccessCredential,
    AccessDelivery,
    AccessLockOperation,
    AccessLockState,
)
from anju.access.rules import COMMAND_TTL_SECONDS, OFFLINE, CredentialStatus, DeliveryState
from anju.biometrics.service import BiometricService
from anju.devices.command_models import DeviceCommand
from anju.devices.commands import CommandStatus, DeviceNotCommandable
from anju.devices.commands.rules import EXPIRED, NO_ACK
from anju.protocol.access import (
    DROP_COMMAND,
    PUT_COMMAND,
    REVOKE_COMMAND,
    CredentialKind,
    encode_signer,
)
from anju.protocol.biometrics import DROP_COMMAND as FACE_DROP
from anju.protocol.biometrics import LOAD_COMMAND as FACE_LOAD
from anju.protocol.biometrics import command_args as face_args

#: Commands that ended with nothing known about the lock: worth sending again.
_ENDED = frozenset({CommandStatus.FAILED, CommandStatus.EXPIRED, CommandStatus.CANCELLED})
_RETRYABLE_CODES = frozenset({NO_ACK, EXPIRED, None})
#: A face offer stands this long (the lock fetches the template at once; a lock offline for
#: longer gets a new offer from reconcile) — it bounds how long a withdrawn offer could be used.
FACE_OFFER_TTL_SECONDS = 3600
#: Kinds revoked by a list in ``access.revoke`` rather than dropped by id.
REVOKED_BY_LIST = (CredentialKind.EKEY, OFFLINE)
RECONCILE_BATCH = 500


def _retryable(command: DeviceCommand) -> bool:
    return command.status == CommandStatus.EXPIRED or command.result_code in _RETRYABLE_CODES


class Deliveries(AccessContext):
    """Queue credentials to locks and keep their per-lock state honest."""

    async def enqueue(
        self,
        actor: str,
        org_id: str,
        device_id: str,
        name: str,
        args: Mapping[str, Any],
        ttl: int = COMMAND_TTL_SECONDS,
    ) -> str | None:
        """Queue one access command; None when the lock no longer takes commands."""
        try:
            command = await self.commands.enqueue(actor, org_id, device_id, name, args, ttl)
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

    async def load_face(
        self,
        actor: str,
        credential: AccessCredential,
        device_id: str,
        version: int,
        *,
        row: AccessDelivery | None = None,
    ) -> AccessDelivery:
        """Queue ``bio.load`` of the subject's template ``version``; the row goes to queued."""
        now = self.clock.now()
        if row is None:
            row = AccessDelivery(
                credential_id=credential.id,
                device_id=device_id,
                org_id=credential.org_id,
                state=DeliveryState.QUEUED,
                queued_at=now,
                updated_at=now,
            )
            self.repo.add(row)
        args = face_args(credential.subject_id, version)
        command_id = await self.enqueue(
            actor, credential.org_id, device_id, FACE_LOAD, args, FACE_OFFER_TTL_SECONDS
        )
        self._set(row, DeliveryState.QUEUED if command_id else DeliveryState.FAILED, command_id)
        if command_id is None:
            row.code = "device_unavailable"
        row.queued_at = now
        await self.session.flush()
        return row

    async def drop(self, actor: str, credential: AccessCredential, row: AccessDelivery) -> None:
        """Queue ``access.drop`` (faces: ``bio.drop``) unless the lock never got (or already
        lost) the credential."""
        if row.state in (DeliveryState.REMOVED, DeliveryState.REFUSED, DeliveryState.WITHDRAWN):
            return
        if credential.kind == CredentialKind.FACE:
            name, args = FACE_DROP, face_args(credential.subject_id, None)
        else:
            name, args = DROP_COMMAND, {"cred": credential.id}
        command_id = await self.enqueue(actor, credential.org_id, row.device_id, name, args)
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

    # --- revocation lists (eKeys, offline codes) ------------------------------------------
    async def lock_state(self, device_id: str) -> AccessLockState:
        """The lock's revocation state (created on first use; locked)."""
        state = await self.repo.lock_state(device_id)
        if state is None:
            state = AccessLockState(
                device_id=device_id,
                epoch=0,
                revoked_ekeys="[]",
                offline_serial=0,
                revoked_serials="[]",
                updated_at=self.clock.now(),
            )
            self.repo.add(state)
            await self.session.flush()
        return state

    async def revoke_args(
        self, state: AccessLockState, ekeys: Sequence[str] = ()
    ) -> dict[str, object]:
        """``access.revoke`` arguments: the epoch and the lock's whole list of revoked offline
        serials of it (codes ended while they could still open; expired ones fall off)."""
        await self.session.flush()
        serials = await self.repo.revoked_offline_serials(
            state.device_id, state.epoch, [CredentialStatus.REVOKED], self.clock.now()
        )
        state.revoked_serials = json.dumps(serials)
        state.updated_at = self.clock.now()
        return {"epoch": state.epoch, "offline": serials, "ekeys": list(ekeys)}

    async def push(
        self,
        actor: str,
        org_id: str,
        device_id: str,
        state: AccessLockState,
        ekeys: Sequence[str] = (),
        subject_id: str | None = None,
    ) -> AccessLockOperation | None:
        """Queue ``access.revoke`` with the lock's current epoch and lists."""
        args = await self.revoke_args(state, ekeys)
        return await self.lock_operation(
            actor, org_id, device_id, REVOKE_COMMAND, args, subject_id=subject_id
        )

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
        if command.name in (FACE_LOAD, FACE_DROP):
            self._fold_face(row, command)
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

    def _fold_face(self, row: AccessDelivery, command: DeviceCommand) -> None:
        """Faces have no signed receipt: the lock's command ack is what there is. ``accepted``
        (bio.load taken; the lock fetches the template), ``withdrawn`` (bio.drop done),
        ``refused`` (the lock said no, e.g. ``bio_store_full``), else sent / failed."""
        now = self.clock.now()
        loading = command.name == FACE_LOAD
        waiting = (
            (DeliveryState.QUEUED, DeliveryState.SENT) if loading else (DeliveryState.REMOVING,)
        )
        if row.state not in waiting:
            return
        if command.status == CommandStatus.ACKED:
            row.state = DeliveryState.ACCEPTED if loading else DeliveryState.WITHDRAWN
            row.confirmed_at = command.acked_at or now
        elif command.status == CommandStatus.FAILED and not _retryable(command):
            row.state = DeliveryState.REFUSED if loading else DeliveryState.FAILED
            row.code = command.result_code
        elif command.status in _ENDED and loading:
            row.state = DeliveryState.FAILED
            row.code = command.result_code or str(command.status)
        elif command.status == CommandStatus.SENT and row.state == DeliveryState.QUEUED:
            row.state = DeliveryState.SENT
        else:
            return
        row.updated_at = now

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
            if row.state == DeliveryState.REMOVING and credential.kind in REVOKED_BY_LIST:
                await self._revoke_again(credential, row)
                queued += 1
            elif row.state == DeliveryState.REMOVING:
                await self.drop(SYSTEM_RECONCILE, credential, row)
                queued += 1
            elif credential.status == CredentialStatus.ACTIVE and credential.kind == "face":
                faces = BiometricService(self.platform, self.session)
                version = await faces.latest_version(credential.subject_id)
                if version:
                    await self.load_face(
                        SYSTEM_RECONCILE, credential, row.device_id, version, row=row
                    )
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

    async def _revoke_again(self, credential: AccessCredential, row: AccessDelivery) -> None:
        """An eKey or offline code is not on the lock to drop: send the revocation again."""
        state = await self.lock_state(row.device_id)
        ekeys = [credential.id] if credential.kind == CredentialKind.EKEY else []
        operation = await self.push(
            SYSTEM_RECONCILE,
            credential.org_id,
            row.device_id,
            state,
            ekeys,
            subject_id=credential.subject_id,
        )
        row.command_id = None if operation is None else operation.command_id
        row.code = None if operation is not None else "device_unavailable"
        row.updated_at = self.clock.now()


SYSTEM_RECONCILE = "system:access-reconcile"
