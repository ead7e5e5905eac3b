"""Credentials of a grant, each kind with its whole lifecycle (docs/access.md, "Credentials").

* passcode — digits generated (or chosen), returned once; the platform keeps only the per-lock
  SE-HMAC digest the lock keeps too (to refuse a duplicate on a lock) and the sealed box.
* card — a per-card key derived from the keyring's card secret and the credential id; uid and
  key returned once to the encoder.
* eKey — the phone's SM2 public key certified per lock by a signed token (returned with the
  ACCESS certificate); nothing is installed, revocation goes by id and epoch (``access.revoke``).

Every secret travels to a lock only inside a box sealed to its secure element.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.context import AccessContext, Details
from anju.access.credentials.delivery import Deliveries
from anju.access.keys import card_key, passcode_digest, seal_for, sign_ekey
from anju.access.models import AccessCredential, AccessDelivery, AccessGrant, AccessLockState
from anju.access.rules import (
    EKEY_LONGEST,
    HELD,
    AccessConflict,
    AccessFrozen,
    CredentialStatus,
    DeliveryState,
    GrantStatus,
    PasscodeInUse,
)
from anju.db import new_id
from anju.devices.models import Device
from anju.errors import InvalidInput, NotFound
from anju.kit.crypto import SM2PublicKey
from anju.platform import Platform
from anju.protocol.access import (
    CARD_UID,
    PASSCODE,
    REVOKE_COMMAND,
    CredentialKind,
    CredentialRecord,
    EKeyToken,
    Schedule,
    card_secret,
)

DEFAULT_PASSCODE_DIGITS = 8
LIVE = (CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED)


def credential_not_found() -> NotFound:
    return NotFound("凭证不存在 / no such credential")


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class CredentialService(AccessContext):
    """Credentials of one transaction (the caller commits)."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        super().__init__(platform, session)
        self.deliveries = Deliveries(self.platform, self.session)

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

    # --- issuing ---------------------------------------------------------------------------
    async def _grant_for_issue(self, org_id: str, grant_id: str) -> AccessGrant:
        """The grant, locked, active, and its subject not frozen."""
        grant = await self.repo.grant(grant_id, for_update=True) if len(grant_id) <= 36 else None
        if grant is None or grant.org_id != org_id:
            raise NotFound("授权不存在 / no such grant")
        if grant.status != GrantStatus.ACTIVE:
            raise AccessConflict(
                f"授权已{grant.status} / the grant is {grant.status}",
                details={"status": grant.status},
            )
        if await self.repo.active_freeze(org_id, grant.subject_id) is not None:
            raise AccessFrozen("该人员的门禁已冻结 / this person's access is frozen")
        return grant

    async def _locks(self, grant: AccessGrant) -> list[Device]:
        ids: list[str] = json.loads(grant.device_ids)
        found = await self.repo.devices(ids)
        return [found[i] for i in ids if i in found]

    async def _new(
        self,
        actor: str,
        grant: AccessGrant,
        kind: CredentialKind,
        *,
        card_uid: str | None = None,
        holder_key: bytes | None = None,
        replaces: str | None = None,
    ) -> AccessCredential:
        now = self.clock.now()
        credential = AccessCredential(
            id=new_id(),
            grant_id=grant.id,
            org_id=grant.org_id,
            subject_id=grant.subject_id,
            kind=kind,
            status=CredentialStatus.ACTIVE,
            card_uid=card_uid,
            holder_key=holder_key,
            replaces=replaces,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        self.repo.add(credential)
        await self.session.flush()
        return credential

    def _record(
        self, credential: AccessCredential, grant: AccessGrant, device_id: str, secret: bytes
    ) -> CredentialRecord:
        return CredentialRecord(
            cred=credential.id,
            device=device_id,
            subject=grant.subject_id,
            kind=CredentialKind(credential.kind),
            secret=secret,
            from_ms=_ms(grant.valid_from),
            until_ms=None if grant.valid_until is None else _ms(grant.valid_until),
            issued_ms=self.now_ms(),
            schedule=None
            if grant.schedule is None
            else Schedule.from_json(json.loads(grant.schedule)),
            uses=grant.uses,
        )

    async def _issued(
        self, actor: str, credential: AccessCredential, locks: int, **extra: str | int | None
    ) -> None:
        details: Details = {
            "credential": credential.id,
            "grant": credential.grant_id,
            "kind": credential.kind,
            "locks": locks,
            **extra,
        }
        await self.record(
            "access.credential.issued",
            actor=actor,
            org_id=credential.org_id,
            target=f"access-credential:{credential.id}",
            details=details,
        )

    async def issue_passcode(
        self,
        actor: str,
        org_id: str,
        grant_id: str,
        digits: str | None = None,
        *,
        replaces: str | None = None,
    ) -> tuple[AccessCredential, str]:
        """A passcode on every door of the grant; the digits are returned here, only once."""
        grant = await self._grant_for_issue(org_id, grant_id)
        locks = await self._locks(grant)
        chosen = digits is not None
        if digits is not None:
            if not PASSCODE.fullmatch(digits):
                raise InvalidInput("密码须为 6–12 位数字 / a passcode is 6–12 digits")
            digests = await self._free_digests(locks, digits)
            if digests is None:
                raise PasscodeInUse(
                    "该密码已被此门锁上的其他凭证使用 / the lock already uses this passcode"
                )
        else:
            for _ in range(20):
                digits = "".join(
                    secrets.choice("0123456789") for _ in range(DEFAULT_PASSCODE_DIGITS)
                )
                if (digests := await self._free_digests(locks, digits)) is not None:
                    break
            else:  # pragma: no cover - 10^8 codes
                raise PasscodeInUse("无法生成不重复的密码 / no free passcode found")
        credential = await self._new(actor, grant, CredentialKind.PASSCODE, replaces=replaces)
        for lock in locks:
            box = seal_for(
                self.platform.keys, lock, self._record(credential, grant, lock.id, digits.encode())
            )
            await self.deliveries.put(actor, credential, lock.id, box, digest=digests[lock.id])
        await self._issued(actor, credential, len(locks), chosen=chosen)
        return credential, digits

    async def _free_digests(self, locks: Sequence[Device], digits: str) -> dict[str, str] | None:
        """Each lock's digest of ``digits``, or None when one lock already holds them."""
        digests = {}
        for lock in locks:
            digest = passcode_digest(self.platform.keys, lock, digits)
            if await self.repo.digest_in_use(lock.id, digest, list(HELD)):
                return None
            digests[lock.id] = digest
        return digests

    async def issue_card(
        self, actor: str, org_id: str, grant_id: str, uid: str, *, replaces: str | None = None
    ) -> tuple[AccessCredential, bytes]:
        """A card on every door of the grant; (credential, per-card key) — the key only once."""
        uid = uid.lower()
        if not CARD_UID.fullmatch(uid) or len(uid) not in (8, 14, 20):
            raise InvalidInput(
                "卡号须为 4、7 或 10 字节的十六进制 / card uid: 4, 7 or 10 bytes hex"
            )
        grant = await self._grant_for_issue(org_id, grant_id)
        if await self.repo.card_in_use(org_id, uid, list(LIVE)):
            raise AccessConflict(
                "此卡已在使用 / this card is in use", details={"reason": "card_in_use"}
            )
        locks = await self._locks(grant)
        credential = await self._new(
            actor, grant, CredentialKind.CARD, card_uid=uid, replaces=replaces
        )
        key = card_key(self.platform.keys, credential.id)
        for lock in locks:
            record = self._record(credential, grant, lock.id, card_secret(uid, key))
            await self.deliveries.put(
                actor, credential, lock.id, seal_for(self.platform.keys, lock, record)
            )
        await self._issued(actor, credential, len(locks))
        return credential, key

    async def issue_ekey(
        self,
        actor: str,
        org_id: str,
        grant_id: str,
        holder_key: bytes,
        *,
        replaces: str | None = None,
    ) -> tuple[AccessCredential, dict[str, str]]:
        """An eKey: a signed token per door for the phone's public key (device id → token)."""
        try:
            SM2PublicKey(holder_key)
        except Exception:
            raise InvalidInput("手机公钥无效 / the phone key is not an SM2 public key") from None
        grant = await self._grant_for_issue(org_id, grant_id)
        locks = await self._locks(grant)
        credential = await self._new(
            actor, grant, CredentialKind.EKEY, holder_key=holder_key, replaces=replaces
        )
        now = self.clock.now()
        until = now + EKEY_LONGEST
        if grant.valid_until is not None:
            until = min(until, grant.valid_until)
        schedule = (
            None if grant.schedule is None else Schedule.from_json(json.loads(grant.schedule))
        )
        tokens: dict[str, str] = {}
        for lock in locks:
            state = await self.lock_state(lock.id)
            token = EKeyToken(
                key_id=credential.id,
                device=lock.id,
                subject=grant.subject_id,
                holder_key=holder_key,
                from_ms=_ms(grant.valid_from),
                until_ms=_ms(until),
                epoch=state.epoch,
                issued_ms=_ms(now),
                schedule=schedule,
            )
            tokens[lock.id] = sign_ekey(self.platform.keys, token)
            self.repo.add(
                AccessDelivery(
                    credential_id=credential.id,
                    device_id=lock.id,
                    org_id=org_id,
                    state=DeliveryState.TOKEN,
                    queued_at=now,
                    updated_at=now,
                )
            )
        await self.session.flush()
        await self._issued(actor, credential, len(locks))
        return credential, tokens

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

    # --- lifecycle -------------------------------------------------------------------------
    async def suspend(self, actor: str, org_id: str, credential_id: str) -> AccessCredential:
        """Take the credential off its locks for now (drops queued; resume puts it back)."""
        credential = await self.get(org_id, credential_id, for_update=True)
        if credential.kind == CredentialKind.EKEY:
            raise InvalidInput(
                "电子钥匙不能暂停，请撤销后重新签发 / an eKey cannot be suspended: revoke it and "
                "issue a new one",
                details={"reason": "ekey_not_suspendable"},
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
        for row in await self.repo.deliveries(credential.id, for_update=True):
            if row.box is not None:
                await self.deliveries.put(actor, credential, row.device_id, row.box, row=row)
        await self._changed(actor, credential, "resumed")
        return credential

    async def revoke(
        self, actor: str, org_id: str, credential_id: str, *, reason: str = "revoked"
    ) -> AccessCredential:
        """Revoke (``reason`` "revoked", or "lost": reported lost) — removed from every lock."""
        credential = await self.get(org_id, credential_id, for_update=True)
        if credential.status not in LIVE:
            raise AccessConflict(
                f"凭证已{credential.end_reason} / the credential is {credential.end_reason}"
            )
        await self.end(actor, credential, reason)
        return credential

    async def end(self, actor: str, credential: AccessCredential, reason: str) -> None:
        """End a live credential (locked by the caller): drops, or eKey revocations, to every
        lock; the sealed boxes are forgotten."""
        now = self.clock.now()
        credential.status = CredentialStatus.REVOKED
        credential.end_reason = reason
        credential.ended_at = credential.updated_at = now
        rows = await self.repo.deliveries(credential.id, for_update=True)
        for row in rows:
            row.box = None
            if credential.kind == CredentialKind.EKEY:
                await self._revoke_ekey(actor, credential, row)
            else:
                await self.deliveries.drop(actor, credential, row)
        await self._changed(actor, credential, reason)

    async def _revoke_ekey(
        self, actor: str, credential: AccessCredential, row: AccessDelivery
    ) -> None:
        state = await self.lock_state(row.device_id)
        revoked: list[str] = json.loads(state.revoked_ekeys)
        if credential.id not in revoked:
            revoked.append(credential.id)
        state.revoked_ekeys = json.dumps(revoked)
        state.updated_at = self.clock.now()
        args = {"epoch": state.epoch, "offline": [], "ekeys": [credential.id]}
        operation = await self.deliveries.lock_operation(
            actor,
            credential.org_id,
            row.device_id,
            REVOKE_COMMAND,
            args,
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
