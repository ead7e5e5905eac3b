"""Credentials of a grant through their lifecycle: reading, suspend, resume, revoke, lost,
replace, and the end of a credential on every lock (docs/access.md, "Credentials"). Issuing
is :mod:`.issuing`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from anju.access.credentials.issuing import LIVE, CredentialIssuer
from anju.access.models import AccessCredential, AccessDelivery, AccessGrant
from anju.access.rules import (
    OFFLINE,
    AccessConflict,
    CredentialStatus,
    DeliveryState,
)
from anju.biometrics.service import BiometricService
from anju.errors import InvalidInput, NotFound
from anju.protocol.access import CredentialKind

#: Kinds that cannot be suspended (nothing to take off the lock and put back): revoke instead.
NOT_SUSPENDABLE = (CredentialKind.EKEY, OFFLINE)


def credential_not_found() -> NotFound:
    return NotFound("凭证不存在 / no such credential")


class CredentialService(CredentialIssuer):
    """Credentials of one transaction (the caller commits)."""

    # --- reading ---------------------------------------------------------------------------
    async def get(
        self, org_id: str, credential_id: str, *, for_update: bool = False
    ) -> AccessCredential:
        credential = (
            await self.repo.credential(credential_id, for_update=for_update)
            if len(credential_id) <= 36
            else None
        )
        if credential is None or credential.org_id != org_id:
            raise credential_not_found()
        return credential

    async def of_grant(self, grant: AccessGrant) -> Sequence[AccessCredential]:
        return await self.repo.credentials_of_grant(grant.id)

    async def deliveries_of(self, org_id: str, credential_id: str) -> Sequence[AccessDelivery]:
        """Where the credential stands on each lock (folded with the outbox)."""
        await self.get(org_id, credential_id)
        return await self.deliveries.view(credential_id)

    # --- lifecycle -------------------------------------------------------------------------
    async def suspend(self, actor: str, org_id: str, credential_id: str) -> AccessCredential:
        """Take the credential off its locks for now (drops queued; resume puts it back)."""
        credential = await self.get(org_id, credential_id, for_update=True)
        if credential.kind in NOT_SUSPENDABLE:
            raise InvalidInput(
                "电子钥匙和离线密码不能暂停，请撤销后重新签发 / an eKey or offline code cannot be "
                "suspended: revoke it and issue a new one",
                details={"reason": f"{credential.kind}_not_suspendable"},
            )
        if credential.status != CredentialStatus.ACTIVE:
            raise AccessConflict(
                f"凭证状态为 {credential.status} / the credential is {credential.status}"
            )
        credential.status = CredentialStatus.SUSPENDED
        credential.updated_at = self.clock.now()
        for row in await self.repo.deliveries(credential.id, for_update=True):
            await self.deliveries.drop(actor, credential, row)
        await self._changed(actor, credential, "suspended")
        return credential

    async def resume(self, actor: str, org_id: str, credential_id: str) -> AccessCredential:
        """Put a suspended credential back on its locks (the sealed boxes are sent again)."""
        credential = await self.get(org_id, credential_id, for_update=True)
        if credential.status != CredentialStatus.SUSPENDED:
            raise AccessConflict(
                f"凭证状态为 {credential.status} / the credential is {credential.status}"
            )
        await self._grant_for_issue(org_id, credential.grant_id)
        credential.status = CredentialStatus.ACTIVE
        credential.updated_at = self.clock.now()
        version = None
        if credential.kind == CredentialKind.FACE:
            version = await BiometricService(self.platform, self.session).latest_version(
                credential.subject_id
            )
        for row in await self.repo.deliveries(credential.id, for_update=True):
            if row.box is not None:
                await self.deliveries.put(actor, credential, row.device_id, row.box, row=row)
            elif version:
                await self.deliveries.load_face(actor, credential, row.device_id, version, row=row)
        await self._changed(actor, credential, "resumed")
        return credential

    async def revoke(
        self, actor: str, org_id: str, credential_id: str, *, reason: str = "revoked"
    ) -> AccessCredential:
        """Revoke (``reason`` "revoked", or "lost": reported lost) — removed from every lock."""
        credential, _ = await self.revoke_with_clear_codes(
            actor, org_id, credential_id, reason=reason
        )
        return credential

    async def revoke_with_clear_codes(
        self, actor: str, org_id: str, credential_id: str, *, reason: str = "revoked"
    ) -> tuple[AccessCredential, dict[str, str]]:
        """:meth:`revoke`, and for an offline code the clear code (device id → digits) that
        revokes it when typed on a lock that is offline."""
        credential = await self.get(org_id, credential_id, for_update=True)
        if credential.status not in LIVE:
            raise AccessConflict(
                f"凭证已{credential.end_reason} / the credential is {credential.end_reason}"
            )
        return credential, await self.end(actor, credential, reason)

    async def end(self, actor: str, credential: AccessCredential, reason: str) -> dict[str, str]:
        """End a live credential (locked by the caller): drops, eKey or offline revocations,
        to every lock; the sealed boxes are forgotten. Offline codes: their clear codes."""
        now = self.clock.now()
        credential.status = CredentialStatus.REVOKED
        credential.end_reason = reason
        credential.ended_at = credential.updated_at = now
        clear_codes: dict[str, str] = {}
        rows = await self.repo.deliveries(credential.id, for_update=True)
        for row in rows:
            row.box = None
            if credential.kind == CredentialKind.EKEY:
                await self._revoke_ekey(actor, credential, row)
            elif credential.kind == OFFLINE:
                clear = await self.offline.revoke(actor, credential, row)
                if clear is not None:
                    clear_codes[row.device_id] = clear
            else:
                await self.deliveries.drop(actor, credential, row)
        await self._changed(actor, credential, reason)
        return clear_codes

    async def _revoke_ekey(
        self, actor: str, credential: AccessCredential, row: AccessDelivery
    ) -> None:
        state = await self.lock_state(row.device_id)
        revoked: list[str] = json.loads(state.revoked_ekeys)
        if credential.id not in revoked:
            revoked.append(credential.id)
        state.revoked_ekeys = json.dumps(revoked)
        state.updated_at = self.clock.now()
        operation = await self.deliveries.push(
            actor,
            credential.org_id,
            row.device_id,
            state,
            ekeys=[credential.id],
            subject_id=credential.subject_id,
        )
        row.state = DeliveryState.REMOVING
        row.command_id = None if operation is None else operation.command_id
        row.code = None if operation is not None else "device_unavailable"
        row.updated_at = self.clock.now()

    async def replace(
        self,
        actor: str,
        org_id: str,
        credential_id: str,
        *,
        digits: str | None = None,
        uid: str | None = None,
        holder_key: bytes | None = None,
    ) -> tuple[AccessCredential, dict[str, Any]]:
        """A new credential of the same kind and grant; the old one revoked ("replaced").
        (new credential, what to hand over once: passcode / card key / eKey tokens)."""
        old = await self.get(org_id, credential_id, for_update=True)
        if old.status not in LIVE:
            raise AccessConflict(f"凭证已{old.end_reason} / the credential is {old.end_reason}")
        handover: dict[str, Any]
        if old.kind == CredentialKind.PASSCODE:
            new, code = await self.issue_passcode(
                actor, org_id, old.grant_id, digits, replaces=old.id
            )
            handover = {"passcode": code}
        elif old.kind == CredentialKind.FACE:
            await self.end(actor, old, "replaced")  # bio.drop first: the lock keeps one face
            return await self.issue_face(actor, org_id, old.grant_id, replaces=old.id), {}
        elif old.kind == OFFLINE:
            raise InvalidInput(
                "离线密码不能替换，请撤销后重新签发 / an offline code cannot be replaced: revoke "
                "it and issue a new one",
                details={"reason": "offline_not_replaceable"},
            )
        elif old.kind == CredentialKind.CARD:
            if uid is None:
                raise InvalidInput(
                    "请提供新卡号 / give the new card's uid", details={"field": "uid"}
                )
            await self.end(actor, old, "replaced")  # the new card may reuse nothing of the old
            new, key = await self.issue_card(actor, org_id, old.grant_id, uid, replaces=old.id)
            return new, {"card_uid": new.card_uid, "card_key": key.hex()}
        else:
            key_bytes = holder_key if holder_key is not None else old.holder_key
            if key_bytes is None:
                raise InvalidInput(
                    "请提供手机公钥 / give the phone key", details={"field": "holder_key"}
                )
            new, tokens = await self.issue_ekey(
                actor, org_id, old.grant_id, key_bytes, replaces=old.id
            )
            handover = {"tokens": tokens}
        await self.end(actor, old, "replaced")
        return new, handover

    async def _changed(self, actor: str, credential: AccessCredential, what: str) -> None:
        await self.record(
            f"access.credential.{what}",
            actor=actor,
            org_id=credential.org_id,
            target=f"access-credential:{credential.id}",
            details={
                "credential": credential.id,
                "kind": credential.kind,
                "grant": credential.grant_id,
            },
        )
        await self.session.flush()
