"""Issuing credentials under a grant, every kind (docs/access.md, "Credentials").

* passcode — digits generated (or chosen), returned once; the platform keeps only the per-lock
  SE-HMAC digest the lock keeps too (to refuse a duplicate on a lock) and the sealed box.
* card — a per-card key derived from the keyring's card secret and the credential id; uid and
  key returned once to the encoder.
* eKey — the phone's SM2 public key certified per lock by a signed token (returned with the
  ACCESS certificate); nothing is installed, revocation goes by id and epoch (``access.revoke``).
* offline — a code for ONE lock computed from its per-lock key (:mod:`.offline`), shown once;
  revocation by serial (``access.revoke`` online, a clear code on the keypad offline).
* face — the subject's face template in force, offered to each lock by ``bio.load`` (the lock
  fetches it itself; :mod:`anju.biometrics.device_path`) and withdrawn by ``bio.drop``.
  Fingerprints are refused: the reference lock has no sensor.

Every secret travels to a lock only inside a box sealed to its secure element.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.context import AccessContext, Details
from anju.access.credentials.delivery import Deliveries
from anju.access.credentials.offline import OfflineIssued, OfflineLocks, OfflineRequest
from anju.access.keys import card_key, passcode_digest, seal_for, sign_ekey
from anju.access.models import AccessCredential, AccessDelivery, AccessGrant, AccessLockState
from anju.access.rules import (
    EKEY_LONGEST,
    HELD,
    OFFLINE,
    AccessConflict,
    AccessFrozen,
    CredentialStatus,
    CredentialUnsupported,
    DeliveryState,
    GrantStatus,
    PasscodeInUse,
)
from anju.biometrics.service import BiometricService
from anju.db import new_id
from anju.devices.models import Device
from anju.errors import InvalidInput, NotFound
from anju.kit.crypto import SM2PublicKey
from anju.platform import Platform
from anju.protocol.access import (
    CARD_UID,
    PASSCODE,
    CredentialKind,
    CredentialRecord,
    EKeyToken,
    Schedule,
    card_secret,
)

DEFAULT_PASSCODE_DIGITS = 8
LIVE = (CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED)


def refuse_unsupported(kind: str) -> None:
    """Fingerprints are refused with a clear code (the reference lock has no sensor)."""
    if kind == CredentialKind.FINGERPRINT:
        raise CredentialUnsupported(
            "参考门锁没有指纹传感器，不能签发指纹凭证 / the reference lock has no fingerprint "
            "sensor: fingerprint credentials cannot be issued",
            details={"kind": kind},
        )


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class CredentialIssuer(AccessContext):
    """Issues credentials in one transaction (the caller commits)."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        super().__init__(platform, session)
        self.deliveries = Deliveries(self.platform, self.session)
        self.offline = OfflineLocks(self.deliveries)

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
        kind: str,
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
        return await self.deliveries.lock_state(device_id)

    async def issue_offline(
        self,
        actor: str,
        org_id: str,
        grant_id: str,
        device_id: str,
        request: OfflineRequest,
    ) -> tuple[AccessCredential, OfflineIssued]:
        """An offline code for one door of the grant; the digits are returned here, only once."""
        grant = await self._grant_for_issue(org_id, grant_id)
        locks = {lock.id: lock for lock in await self._locks(grant)}
        if device_id not in locks:
            raise NotFound(
                "该授权不含此门锁 / the grant has no such door", details={"field": "device_id"}
            )
        credential = await self._new(actor, grant, OFFLINE)
        issued = await self.offline.issue(credential, grant, locks[device_id], request)
        meta = issued.meta
        await self._issued(
            actor,
            credential,
            1,
            offline_kind=meta.kind,
            serial=meta.serial,
            epoch=meta.epoch,
            until=None if meta.valid_until is None else meta.valid_until.isoformat(),
        )
        return credential, issued

    async def reset_offline(self, actor: str, org_id: str, device_id: str) -> tuple[int, str, int]:
        """Advance a lock's revocation epoch: every older offline code dies. (new epoch, the
        clear code to type on an offline lock, how many live offline codes ended)."""
        locks = await self.repo.org_locks(org_id, device_ids=[device_id])
        if not locks:
            raise NotFound("门锁不存在 / no such lock", details={"field": "device_id"})
        state, code, ended = await self.offline.reset_epoch(actor, org_id, locks[0])
        return state.epoch, code, ended

    async def issue_face(
        self, actor: str, org_id: str, grant_id: str, *, replaces: str | None = None
    ) -> AccessCredential:
        """The subject's face template in force offered (``bio.load``) to every door."""
        grant = await self._grant_for_issue(org_id, grant_id)
        faces = BiometricService(self.platform, self.session)
        await faces.require_template(grant.subject_id)
        version = await faces.latest_version(grant.subject_id)
        locks = await self._locks(grant)
        ids = {lock.id for lock in locks}
        for other in await self.repo.credentials_of_subject(org_id, grant.subject_id, list(LIVE)):
            if other.kind != CredentialKind.FACE or other.id == replaces:
                continue
            if ids & {row.device_id for row in await self.repo.deliveries(other.id)}:
                # bio.drop withdraws a person's face from a lock: one face credential per lock.
                raise AccessConflict(
                    "此人的人脸已在这些门锁上 / the face is already on one of these locks",
                    details={"reason": "face_in_use", "credential": other.id},
                )
        credential = await self._new(actor, grant, CredentialKind.FACE, replaces=replaces)
        for lock in locks:
            await self.deliveries.load_face(actor, credential, lock.id, version)
        await self._issued(actor, credential, len(locks), version=version)
        return credential
