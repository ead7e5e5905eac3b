"""Unlock attempts at the lock, verified locally and offline (docs/device-sdk.md).

Every attempt — keypad, card, eKey, face, remote command, inside handle — ends in one
:class:`AccessVerdict` and one signed ``access.unlock`` record, granted or denied. Wrong attempts
(guesses: an unknown passcode or card, a card's wrong answer, a bad eKey signature or proof, a
face that matches no one) count towards the lockout; refusals of a genuine credential (expired,
outside its schedule, revoked, frozen …) do not, because they are not guesses.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from anju.device.access.alarms import AlarmMonitor, AlarmPolicy
from anju.device.access.card import Card
from anju.device.access.lockout import Lockout, LockoutPolicy
from anju.device.access.offline import (
    CLEARED,
    OFFLINE_PRF_LABEL,
    OfflineBook,
    OfflineBookFactory,
)
from anju.device.access.records import RecordSigner
from anju.device.access.store import CredentialStore, StoredCredential
from anju.device.faces import FaceAgent, FaceVerdict
from anju.device.storage import Sealer, SlotStore
from anju.errors import AnjuError
from anju.kit.crypto import SM2PublicKey, random_bytes
from anju.protocol.access import (
    CHALLENGE_BYTES,
    PASSCODE_LABEL,
    AlarmType,
    EKeyToken,
    UnlockMethod,
    card_response_ok,
    check_ekey,
)
from anju.protocol.certificates import Certificate
from anju.protocol.errors import ProtocolError

ACCESS_CONTEXT = b"anju/lock-access/v1"
GUARD_CONTEXT = b"anju/lock-access-guard/v1"
ALARMS_CONTEXT = b"anju/lock-alarms/v1"
MAX_TYPED_DIGITS = 16

#: Refusals that count as wrong attempts (guesses or forgeries) towards the lockout.
WRONG_ATTEMPT_REASONS = frozenset(
    {
        "unknown_credential",
        "bad_response",
        "bad_signature",
        "bad_signer",
        "wrong_device",
        "stale_challenge",
        "malformed",
        "biometric_no_match",
    }
)


@dataclass(frozen=True)
class AccessOptions:
    """Access-control settings of one lock."""

    capacity: int = 200  # credentials the lock holds (store_full beyond)
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    alarms: AlarmPolicy = field(default_factory=AlarmPolicy)
    challenge_ttl_s: int = 30  # an eKey challenge answers within this
    max_challenges: int = 4  # outstanding eKey challenges (the oldest is forgotten)


@dataclass(frozen=True)
class AccessVerdict:
    """The outcome of one unlock attempt (as recorded in its signed ``access.unlock``)."""

    granted: bool
    method: UnlockMethod
    reason: str | None
    cred: str | None
    subject: str | None
    serial: int | None
    event_id: str
    face: FaceVerdict | None = None


class AccessSecureElement(Protocol):
    """What access control uses of the SE; private keys never leave it."""

    def sign(self, message: bytes) -> bytes: ...

    def decrypt(self, ciphertext: bytes) -> bytes: ...

    def hmac(self, label: str, data: bytes) -> bytes: ...

    def storage_sealer(self, label: str) -> Sealer: ...


def reason_of(error: ProtocolError) -> str:
    """The REASONS code of an ``access_*`` protocol error."""
    code = error.code.removeprefix("access_")
    # A proof that does not verify answers a challenge this lock did not issue.
    return "stale_challenge" if code == "bad_proof" else code


class AccessVerifier:
    """The lock's access state and its unlock attempts."""

    def __init__(
        self,
        *,
        device_id: str,
        ca_public_key: SM2PublicKey,
        se: AccessSecureElement,
        data_dir: Path,
        faces: FaceAgent,
        record_event: Callable[[str, dict[str, Any]], str],
        unlock: Callable[[str], None],
        is_locked: Callable[[], bool],
        relock: Callable[[], None],
        now_ms: Callable[[], int],
        options: AccessOptions | None = None,
        offline_book: OfflineBookFactory | None = None,
    ) -> None:
        self.options = options or AccessOptions()
        self.device_id = device_id
        self._ca = ca_public_key
        self._se = se
        self._faces = faces
        self._unlock = unlock
        self._now = now_ms
        device = bytes.fromhex(device_id)

        def slots(name: str, context: bytes) -> SlotStore:
            sealer = se.storage_sealer(f"lock/{name}")
            return SlotStore(data_dir, name, sealer, context=context + device)

        self.store = CredentialStore(
            slots("access", ACCESS_CONTEXT), capacity=self.options.capacity
        )
        self.lockout = Lockout(slots("access-guard", GUARD_CONTEXT), self.options.lockout)
        self.records = RecordSigner(
            device_id, sign=se.sign, record_event=record_event, now_ms=now_ms
        )
        self.alarms = AlarmMonitor(
            slots("alarms", ALARMS_CONTEXT),
            self.records,
            policy=self.options.alarms,
            now_ms=now_ms,
            is_locked=is_locked,
            relock=relock,
        )
        self.offline: OfflineBook | None = None
        if offline_book is not None:
            self.offline = offline_book(
                lambda data: se.hmac(OFFLINE_PRF_LABEL, data), self.store.state.offline
            )
        # challenge -> expiry (ms); in memory only: a power cycle voids outstanding challenges
        self._challenges: OrderedDict[bytes, int] = OrderedDict()

    # --- outcome ---------------------------------------------------------------------------
    def _finish(
        self,
        method: UnlockMethod,
        reason: str | None,
        *,
        cred: str | None = None,
        subject: str | None = None,
        serial: int | None = None,
        face: FaceVerdict | None = None,
        bolt: bool = True,
        resets: bool = True,
    ) -> AccessVerdict:
        granted = reason is None
        if granted and resets:
            self.lockout.success()
            self.alarms.clear_alarm(AlarmType.WRONG_ATTEMPTS, {"by": method.value})
        elif reason in WRONG_ATTEMPT_REASONS and self.lockout.wrong_attempt(self._now()):
            detail = {"threshold": self.options.lockout.threshold, "until": self.lockout.until_ms}
            self.alarms.raise_alarm(AlarmType.WRONG_ATTEMPTS, detail)
        event_id = self.records.unlock(
            method, granted=granted, reason=reason, cred=cred, subject=subject, serial=serial
        )
        if granted and bolt:
            self._unlock(method.value)
        return AccessVerdict(granted, method, reason, cred, subject, serial, event_id, face)

    def _refusal(self, credential: StoredCredential, now_ms: int) -> str | None:
        if credential.subject in self.store.state.frozen:
            return "frozen"
        return credential.admits(now_ms)

    def _grant_stored(self, method: UnlockMethod, credential: StoredCredential) -> AccessVerdict:
        reason = self._refusal(credential, self._now())
        if reason is None and credential.uses_left is not None:
            credential.uses_left -= 1
            self.store.save()  # spent before the door opens: a power cut cannot refund it
        return self._finish(method, reason, cred=credential.cred, subject=credential.subject)

    # --- keypad ----------------------------------------------------------------------------
    def enter_passcode(self, digits: str) -> AccessVerdict:
        """Digits typed on the keypad: an online passcode, else an offline code."""
        if self.lockout.locked_out(self._now()):
            return self._finish(UnlockMethod.PASSCODE, "locked_out")
        if not (digits.isascii() and digits.isdigit()) or len(digits) > MAX_TYPED_DIGITS:
            return self._finish(UnlockMethod.PASSCODE, "malformed")
        credential = self.store.by_digest(self._se.hmac(PASSCODE_LABEL, digits.encode()))
        if credential is not None:
            return self._grant_stored(UnlockMethod.PASSCODE, credential)
        if self.offline is None:
            return self._finish(UnlockMethod.PASSCODE, "unknown_credential")
        verdict = self.offline.check(digits, self._now())
        self.store.state.offline = self.offline.to_dict()
        self.store.save()  # a one-time code is spent durably before the door opens
        if verdict.serial is None and verdict.reason != CLEARED:
            return self._finish(UnlockMethod.PASSCODE, verdict.reason or "unknown_credential")
        reason = None if verdict.ok else verdict.reason or "unknown_credential"
        return self._finish(UnlockMethod.OFFLINE_PASSCODE, reason, serial=verdict.serial)

    # --- cards -----------------------------------------------------------------------------
    def present_card(self, card: Card) -> AccessVerdict:
        """A card held to the reader: UID lookup, then challenge-response with its key."""
        if self.lockout.locked_out(self._now()):
            return self._finish(UnlockMethod.CARD, "locked_out")
        credential = self.store.by_card(card.uid)
        if credential is None:
            return self._finish(UnlockMethod.CARD, "unknown_credential")
        challenge = random_bytes(CHALLENGE_BYTES)
        try:
            response = card.answer(challenge, device_id=self.device_id)
            ok = card_response_ok(
                credential.card_key,
                response,
                uid=credential.card_uid,
                device_id=self.device_id,
                challenge=challenge,
            )
        except (AnjuError, ValueError, TypeError):
            ok = False
        if not ok:  # a clone with the UID but not the key; the holder is not proven
            return self._finish(UnlockMethod.CARD, "bad_response", cred=credential.cred)
        return self._grant_stored(UnlockMethod.CARD, credential)

    # --- eKeys -----------------------------------------------------------------------------
    def ekey_challenge(self) -> bytes:
        """A fresh challenge for a phone (single use, expires after ``challenge_ttl_s``)."""
        now = self._now()
        for challenge, expiry in list(self._challenges.items()):
            if expiry <= now:
                del self._challenges[challenge]
        while len(self._challenges) >= self.options.max_challenges:
            self._challenges.popitem(last=False)
        challenge = random_bytes(CHALLENGE_BYTES)
        self._challenges[challenge] = now + self.options.challenge_ttl_s * 1000
        return challenge

    def present_ekey(
        self,
        signed_token: str,
        proof: bytes,
        challenge: bytes,
        *,
        signer: Certificate | None = None,
    ) -> AccessVerdict:
        """A phone's eKey: its signed token and its proof over ``challenge``. The ACCESS
        certificate comes with the token, or else the lock uses those it verified in puts."""
        now = self._now()
        if self.lockout.locked_out(now):
            return self._finish(UnlockMethod.EKEY, "locked_out")
        expiry = self._challenges.pop(challenge, None)  # single use, whatever follows
        if expiry is None or expiry <= now:
            return self._finish(UnlockMethod.EKEY, "stale_challenge")
        signers = [signer] if signer is not None else self._known_signers()
        token: EKeyToken | None = None
        reason = "bad_signer"
        for candidate in signers:
            try:
                token = check_ekey(
                    signed_token,
                    proof,
                    signer=candidate,
                    ca=self._ca,
                    device_id=self.device_id,
                    challenge=challenge,
                    now_ms=now,
                )
                break
            except ProtocolError as exc:
                reason = reason_of(exc)
                if reason not in ("bad_signer", "bad_signature"):
                    break  # the token verified; only this signer may have signed it
        if token is None:
            return self._finish(UnlockMethod.EKEY, reason)
        state = self.store.state
        refusal = None
        if token.key_id in state.revoked_ekeys:
            refusal = "revoked"
        elif token.epoch < state.ekey_epoch:
            refusal = "epoch_revoked"
        elif token.subject in state.frozen:
            refusal = "frozen"
        return self._finish(UnlockMethod.EKEY, refusal, cred=token.key_id, subject=token.subject)

    def _known_signers(self) -> list[Certificate]:
        signers = []
        for encoded in self.store.state.signers:
            try:
                signers.append(Certificate.decode(encoded))
            except ProtocolError:
                continue
        return signers

    # --- faces, remote, inside -------------------------------------------------------------
    async def face_unlock(self) -> AccessVerdict:
        """Someone at the camera: live, one of the people loaded here, and not frozen."""
        if self.lockout.locked_out(self._now()):
            return self._finish(UnlockMethod.FACE, "locked_out")
        face = await self._faces.verify()
        if not face.matched:
            return self._finish(UnlockMethod.FACE, "biometric_no_match", face=face)
        reason = "frozen" if face.subject in self.store.state.frozen else None
        return self._finish(UnlockMethod.FACE, reason, subject=face.subject, face=face)

    def remote_unlock(self) -> AccessVerdict:
        """Record the platform's authenticated ``unlock`` command (the caller drives the bolt).
        Not subject to the lockout, and it ends one: it is how an operator lets in a guest who
        locked themselves out."""
        return self._finish(UnlockMethod.REMOTE, None, bolt=False)

    def inside_handle(self) -> AccessVerdict:
        """The handle inside: always opens (egress is never blocked) and is recorded; it
        neither counts nor resets wrong attempts made outside."""
        return self._finish(UnlockMethod.INSIDE, None, resets=False)
