"""The ``access.*`` commands on the lock (docs/protocol.md, "Access control / 门禁").

Each command is executed once (the lock's command ledger) and confirmed by a signed
``access.receipt``: the platform marks a credential installed or removed only from that
receipt, never from the plain command ack. A refused ``access.put`` is acknowledged
``ok=false`` with the reason code *and* confirmed by a ``refused`` receipt.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeGuard

from anju.device.access.store import StoredCredential
from anju.device.access.verifier import AccessVerifier, reason_of
from anju.protocol.access import (
    CREDENTIAL_ID,
    DROP_COMMAND,
    FREEZE_COMMAND,
    PASSCODE_LABEL,
    PUT_COMMAND,
    REVOKE_COMMAND,
    SUBJECT,
    UNFREEZE_COMMAND,
    WIPE_COMMAND,
    CredentialKind,
    CredentialRecord,
    decode_signer,
    open_credential,
    split_card_secret,
)
from anju.protocol.errors import ProtocolError
from anju.protocol.messages import MAX_INT

Result = tuple[bool, str | None]
#: Most serials or key ids one ``access.revoke`` may carry.
MAX_REVOKE_ITEMS = 1024
POLL_INTERVAL_S = 1.0


def _is_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and CREDENTIAL_ID.fullmatch(value) is not None


def _is_subject(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and SUBJECT.fullmatch(value) is not None


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT


class AccessAgent(AccessVerifier):
    """Access control on the lock: the commands (here) and the unlock attempts (verifier)."""

    def command(self, name: str, command_id: str, args: dict[str, Any]) -> Result:
        """Execute one ``access.*`` command; the command's result."""
        if name == PUT_COMMAND:
            return self._put(command_id, args)
        if name == DROP_COMMAND:
            return self._drop(command_id, args)
        if name == WIPE_COMMAND:
            return self._wipe(command_id, args)
        if name in (FREEZE_COMMAND, UNFREEZE_COMMAND):
            return self._freeze(command_id, args, frozen=name == FREEZE_COMMAND)
        if name == REVOKE_COMMAND:
            return self._revoke(command_id, args)
        return False, "unknown_command"

    def _refuse(
        self, command_id: str, op: str, code: str, *, cred: Any = None, subject: Any = None
    ) -> Result:
        self.records.receipt(
            command_id,
            op,
            "refused",
            cred=cred if _is_id(cred) else None,
            subject=subject if _is_subject(subject) else None,
            code=code,
        )
        return False, code

    # --- put -------------------------------------------------------------------------------
    def _put(self, command_id: str, args: dict[str, Any]) -> Result:
        cred = args.get("cred")
        if set(args) != {"cred", "box", "cert"} or not _is_id(cred):
            return self._refuse(command_id, "put", "malformed", cred=cred)
        try:
            signer = decode_signer(args["cert"])
            record = open_credential(
                args["box"],
                device_id=self.device_id,
                cred_id=cred,
                decrypt=self._se.decrypt,
                signer=signer,
                ca=self._ca,
                now_s=self._now() // 1000,
            )
            stored = self._reduce(record)
        except ProtocolError as exc:
            return self._refuse(command_id, "put", reason_of(exc), cred=cred)
        except _Refused as refused:
            return self._refuse(command_id, "put", refused.code, cred=cred)
        if not self.store.has_room_for(cred):
            return self._refuse(command_id, "put", "store_full", cred=cred)
        self.store.state.credentials[cred] = stored
        self.store.remember_signer(signer.encode())
        self.store.save(both_slots=True)  # a replaced secret must not linger in the old slot
        self.records.receipt(command_id, "put", "installed", cred=cred, subject=record.subject)
        return True, None

    def _reduce(self, record: CredentialRecord) -> StoredCredential:
        """What the lock keeps of an opened credential: passcode digits become their SE
        digest; a card keeps its UID and key (inside the sealed record)."""
        digest, uid, key = b"", "", b""
        if record.kind == CredentialKind.PASSCODE:
            digest = self._se.hmac(PASSCODE_LABEL, record.secret)
            other = self.store.by_digest(digest)
        elif record.kind == CredentialKind.CARD:
            uid, key = split_card_secret(record.secret)
            other = self.store.by_card(uid)
        elif record.kind == CredentialKind.EKEY:
            other = None
        else:  # faces arrive by bio.load (FaceAgent); this lock has no fingerprint sensor
            raise _Refused("unsupported")
        if other is not None and other.cred != record.cred:
            raise _Refused("duplicate")
        return StoredCredential.from_record(record, digest=digest, uid=uid, key=key)

    # --- drop / wipe -----------------------------------------------------------------------
    def _remove(self, credential: StoredCredential) -> None:
        del self.store.state.credentials[credential.cred]
        if credential.kind == CredentialKind.EKEY:  # its token must not open any more
            self.store.revoke_ekeys([credential.cred])

    def _drop(self, command_id: str, args: dict[str, Any]) -> Result:
        cred = args.get("cred")
        if set(args) != {"cred"} or not _is_id(cred):
            return self._refuse(command_id, "drop", "malformed", cred=cred)
        credential = self.store.state.credentials.get(cred)
        if credential is None:  # already gone: the goal state holds, and the receipt says so
            self.records.receipt(command_id, "drop", "removed", cred=cred, code="not_found")
            return True, None
        self._remove(credential)
        self.store.save(both_slots=True)
        self.records.receipt(command_id, "drop", "removed", cred=cred, subject=credential.subject)
        return True, None

    def _wipe(self, command_id: str, args: dict[str, Any]) -> Result:
        subject = args.get("subject")
        if set(args) != {"subject"} or not _is_subject(subject):
            return self._refuse(command_id, "wipe", "malformed", subject=subject)
        removed = self.store.of_subject(subject)
        for credential in removed:
            self._remove(credential)
        self.store.save(both_slots=True)
        self._faces.drop(subject)  # templates and keys, in both of the faces store's slots
        for credential in removed:
            self.records.receipt(
                command_id, "wipe", "removed", cred=credential.cred, subject=subject
            )
        self.records.receipt(command_id, "wipe", "applied", subject=subject)
        return True, None

    # --- freeze / revoke -------------------------------------------------------------------
    def _freeze(self, command_id: str, args: dict[str, Any], *, frozen: bool) -> Result:
        op = "freeze" if frozen else "unfreeze"
        subject = args.get("subject")
        if set(args) != {"subject"} or not _is_subject(subject):
            return self._refuse(command_id, op, "malformed", subject=subject)
        if frozen:
            self.store.state.frozen.add(subject)
        else:
            self.store.state.frozen.discard(subject)
        self.store.save()
        self.records.receipt(command_id, op, "applied", subject=subject)
        return True, None

    def _revoke(self, command_id: str, args: dict[str, Any]) -> Result:
        epoch, serials, key_ids = args.get("epoch"), args.get("offline"), args.get("ekeys")
        if (
            set(args) != {"epoch", "offline", "ekeys"}
            or not _is_count(epoch)
            or not isinstance(serials, list)
            or not isinstance(key_ids, list)
            or len(serials) > MAX_REVOKE_ITEMS
            or len(key_ids) > MAX_REVOKE_ITEMS
            or not all(_is_count(s) for s in serials)
            or not all(_is_id(k) for k in key_ids)
        ):
            return self._refuse(command_id, "revoke", "malformed")
        state = self.store.state
        state.ekey_epoch = max(state.ekey_epoch, epoch)  # an epoch never goes back
        self.store.revoke_ekeys(key_ids)
        if self.offline is not None:
            self.offline.apply_epoch(epoch)
            self.offline.revoke(serials)
            state.offline = self.offline.to_dict()
        self.store.save()
        self.records.receipt(command_id, "revoke", "applied")
        return True, None

    async def run(self) -> None:
        """Sensor timers (door left open) until cancelled."""
        while True:
            self.alarms.poll()
            await asyncio.sleep(POLL_INTERVAL_S)


class _Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
