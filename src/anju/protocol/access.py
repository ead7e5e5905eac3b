"""Access control on the device protocol: credentials, eKeys, cards and signed lock records.

Shared by the platform (which seals credentials and verifies records) and the lock (which opens
credentials, verifies eKeys and cards, and signs records). docs/protocol.md, "Access control".

**Credentials to a lock** travel in commands of the outbox, whose arguments the platform stores
in the clear — so the secret part is a *digital envelope* to the lock's secure element, signed
first and encrypted second (seed 000 §4.2, L3):

    signed = canonical_json({"rec": <credential record>, "sig": b64(SM2 by the platform's access
             key over b"anju/access/credential/v1" ‖ canonical_json(record))})
    box    = b"ACB1" ‖ u8 len(c) ‖ c = SM2-encrypt(lock public key, k) ‖ nonce (12)
             ‖ SM4-GCM(k, nonce, signed, aad = b"anju/access/box/v1" ‖ device id ‖ credential id)

``k`` is a fresh 16-byte SM4 key per box. Only the lock's SE can recover ``k``; the platform
keeps no way to read a box after sealing it. The access key is certified by the device CA (an
ACCESS certificate, which every lock can check against the CA it already trusts).

**Records from a lock** (unlock attempts, credential receipts, alarms) are ``evt`` messages whose
``data`` is ``{"rec": <record>, "sig": b64(SE signature over b"anju/access/record/v1" ‖
canonical_json(record))}``; every record names the device (``dev``), so a record cannot be
replayed as another lock's. The event buffer of the lock makes them at-least-once; the platform
de-duplicates by event id.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from anju.errors import IntegrityError
from anju.kit.crypto import SM2PublicKey, hmac_sm3, random_bytes
from anju.kit.crypto.sm4 import sm4_gcm_decrypt, sm4_gcm_encrypt
from anju.protocol.certificates import Certificate, CertKind
from anju.protocol.errors import CertificateError, ProtocolError
from anju.protocol.messages import MAX_INT, canonical_json

# --- names ---------------------------------------------------------------------------------
#: Commands (platform → lock), through the command outbox.
PUT_COMMAND = "access.put"  # {"cred", "box", "cert"}: install or replace one credential
DROP_COMMAND = "access.drop"  # {"cred"}: remove one credential (wipe its secret)
WIPE_COMMAND = "access.wipe"  # {"subject"}: remove every credential and template of a person
FREEZE_COMMAND = "access.freeze"  # {"subject"}: refuse every credential of a person
UNFREEZE_COMMAND = "access.unfreeze"  # {"subject"}
REVOKE_COMMAND = "access.revoke"  # {"epoch", "offline": [serials], "ekeys": [ids]}
UNLOCK_COMMAND = "unlock"  # the existing remote unlock
COMMANDS = (
    PUT_COMMAND,
    DROP_COMMAND,
    WIPE_COMMAND,
    FREEZE_COMMAND,
    UNFREEZE_COMMAND,
    REVOKE_COMMAND,
)

#: Event kinds (lock → platform), each carrying a signed record.
UNLOCK_EVENT = "access.unlock"
RECEIPT_EVENT = "access.receipt"
ALARM_RAISED_EVENT = "alarm.raised"
ALARM_CLEARED_EVENT = "alarm.cleared"
SIGNED_EVENTS = (UNLOCK_EVENT, RECEIPT_EVENT, ALARM_RAISED_EVENT, ALARM_CLEARED_EVENT)


class CredentialKind(StrEnum):
    """What a credential is; the lock verifies each locally."""

    PASSCODE = "passcode"  # digits pushed online; the lock keeps only their SE-HMAC
    CARD = "card"  # NFC/IC card answering a challenge with its per-card key
    EKEY = "ekey"  # a phone's key pair, certified by a platform-signed token
    FACE = "face"  # a protected face template (bio.load)
    FINGERPRINT = "fingerprint"  # a protected fingerprint template


class UnlockMethod(StrEnum):
    """How an unlock was attempted (an unlock record's ``method``)."""

    PASSCODE = "passcode"
    OFFLINE_PASSCODE = "offline_passcode"
    CARD = "card"
    EKEY = "ekey"
    FACE = "face"
    FINGERPRINT = "fingerprint"
    REMOTE = "remote"  # the platform's `unlock` command
    INSIDE = "inside"  # the handle or button inside (no credential)
    MECHANICAL = "mechanical"  # the emergency mechanical key (detected, not verified)


class AlarmType(StrEnum):
    """Alarms a lock raises (R2); ``alarm.raised`` / ``alarm.cleared`` records name one."""

    WRONG_ATTEMPTS = "wrong_attempts"  # consecutive failures reached the lockout threshold
    TAMPER = "tamper"  # pried or opened casing
    FORCED_ENTRY = "forced_entry"  # door opened without an unlock
    DOOR_LEFT_OPEN = "door_left_open"
    LOW_BATTERY = "low_battery"


#: Reason codes of refused unlocks and credential receipts (stable; docs/protocol.md).
REASONS: dict[str, str] = {
    "unknown_credential": "no credential of this lock matches",
    "not_yet_valid": "before the credential's validity",
    "expired": "after the credential's validity",
    "outside_schedule": "outside the credential's recurring schedule",
    "uses_exhausted": "the credential's use count is spent",
    "suspended": "the credential is suspended",
    "revoked": "the credential is revoked",
    "epoch_revoked": "issued before the lock's current revocation epoch",
    "already_used": "a one-time credential used before",
    "frozen": "the person's access is frozen",
    "locked_out": "too many wrong attempts: the lock refuses everything for a while",
    "bad_response": "the card's answer to the challenge is wrong (e.g. a cloned UID)",
    "bad_signature": "a signature does not verify",
    "bad_signer": "the signer certificate is not an ACCESS certificate of the trusted CA",
    "wrong_device": "issued for another lock",
    "stale_challenge": "the answer is to a challenge the lock did not issue, or no longer holds",
    "malformed": "bytes or fields do not follow the format",
    "store_full": "the lock holds as many credentials as it can",
    "not_found": "the lock holds no such credential",
    "biometric_no_match": "the face or fingerprint did not match an enrolled template",
    "duplicate": "another credential of this lock has the same passcode or card UID",
    "unsupported": "this lock cannot use that kind of credential",
    "cleared": "an offline clear code: the lock applied its revocation, nothing opens",
}

RECEIPT_STATES = ("installed", "removed", "refused", "applied")

SUBJECT = re.compile(r"[A-Za-z0-9_-]{1,64}")
CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEVICE_ID = re.compile(r"[0-9a-f]{32}")
PASSCODE = re.compile(r"[0-9]{6,12}")
#: The SE HMAC label the lock stores passcode digests under; the platform computes the same
#: digest (protocol.keys.se_hmac) to refuse a passcode that another credential of the lock uses.
PASSCODE_LABEL = "passcode"
CARD_KEY_BYTES = 16
CARD_UID = re.compile(r"[0-9a-f]{8,20}")  # 4, 7 or 10 byte UIDs as lowercase hex
CHALLENGE_BYTES = 16
CARD_RESPONSE_BYTES = 16
PUBLIC_KEY_BYTES = 64
MAX_BOX_BYTES = 2048

CREDENTIAL_CONTEXT = b"anju/access/credential/v1"
BOX_CONTEXT = b"anju/access/box/v1"
RECORD_CONTEXT = b"anju/access/record/v1"
EKEY_CONTEXT = b"anju/access/ekey/v1"
EKEY_PROOF_CONTEXT = b"anju/access/ekey-proof/v1"
CARD_CONTEXT = b"anju/access/card/v1"
BOX_MAGIC = b"ACB1"
NONCE_BYTES = 12


def _bad(message: str) -> ProtocolError:
    return ProtocolError("access_malformed", message)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: Any, what: str, *, max_bytes: int = MAX_BOX_BYTES) -> bytes:
    if not isinstance(text, str) or len(text) > (max_bytes * 4) // 3 + 4:
        raise _bad(f"{what} is not base64 of at most {max_bytes} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{what} is not base64") from None


def _int(value: Any, what: str, lo: int = 0, hi: int = MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(f"{what} must be an integer in [{lo}, {hi}]")
    return value


def _opt_int(value: Any, what: str, lo: int = 0, hi: int = MAX_INT) -> int | None:
    return None if value is None else _int(value, what, lo, hi)


def _text(value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _bad(f"{what} does not match {pattern.pattern}")
    return value


# --- schedules -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """A recurring daily window on some weekdays, in the property's fixed UTC offset.

    ``weekdays``: bit 0 = Monday … bit 6 = Sunday. Minutes count from local midnight;
    ``end_minute`` is exclusive and may be below ``start_minute`` (a window past midnight, which
    belongs to the weekday it starts on). The lock's clock is UTC; ``utc_offset_minutes`` makes
    local time explicit, so no time-zone database is needed on the lock (docs/protocol.md).
    """

    weekdays: int
    start_minute: int
    end_minute: int
    utc_offset_minutes: int = 480  # China Standard Time

    def __post_init__(self) -> None:
        _int(self.weekdays, "weekdays", 1, 127)
        _int(self.start_minute, "start_minute", 0, 1439)
        _int(self.end_minute, "end_minute", 0, 1440)
        _int(self.utc_offset_minutes, "utc_offset_minutes", -720, 840)
        if self.start_minute == self.end_minute:
            raise _bad("an empty daily window")

    def admits(self, at_ms: int) -> bool:
        """Whether the UTC instant ``at_ms`` lies inside a window of this schedule."""
        local_minutes = at_ms // 60_000 + self.utc_offset_minutes
        minute_of_day = local_minutes % 1440
        day = local_minutes // 1440
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
        if self.start_minute < self.end_minute:
            return bool(self.weekdays >> weekday & 1) and (
                self.start_minute <= minute_of_day < self.end_minute
            )
        if minute_of_day >= self.start_minute:
            return bool(self.weekdays >> weekday & 1)
        previous = (weekday - 1) % 7
        return bool(self.weekdays >> previous & 1) and minute_of_day < self.end_minute

    def to_json(self) -> dict[str, int]:
        return {
            "days": self.weekdays,
            "start": self.start_minute,
            "end": self.end_minute,
            "tz": self.utc_offset_minutes,
        }

    @classmethod
    def from_json(cls, value: Any) -> Schedule:
        if not isinstance(value, dict) or set(value) != {"days", "start", "end", "tz"}:
            raise _bad("schedule must be {days, start, end, tz}")
        return cls(value["days"], value["start"], value["end"], value["tz"])


# --- credential records --------------------------------------------------------------------
@dataclass(frozen=True)
class CredentialRecord:
    """One credential as the lock stores it (the ``rec`` of a sealed box).

    ``secret``: passcode — its digits (ASCII); card — uid (ASCII hex) ‖ b":" ‖ 16-byte card key;
    ekey — not used (eKeys are verified from their token, empty); face / fingerprint — the
    protected template. Times are unix milliseconds, ``until_ms`` None = until revoked.
    """

    cred: str
    device: str
    subject: str
    kind: CredentialKind
    secret: bytes
    from_ms: int
    until_ms: int | None
    issued_ms: int
    schedule: Schedule | None = None
    uses: int | None = None  # None = unlimited

    def __post_init__(self) -> None:
        _text(self.cred, CREDENTIAL_ID, "cred")
        _text(self.device, DEVICE_ID, "device")
        _text(self.subject, SUBJECT, "subject")
        if self.until_ms is not None and self.until_ms <= self.from_ms:
            raise _bad("until must be after from")
        _opt_int(self.uses, "uses", 1, 1_000_000)
        if len(self.secret) > 1024:
            raise _bad("secret longer than 1024 bytes")
        if self.kind == CredentialKind.PASSCODE:
            _text(self.secret.decode("ascii", "replace"), PASSCODE, "passcode")

    def admits(self, at_ms: int) -> str | None:
        """None when the credential's own time rules admit ``at_ms``, else the reason code."""
        if at_ms < self.from_ms:
            return "not_yet_valid"
        if self.until_ms is not None and at_ms >= self.until_ms:
            return "expired"
        if self.schedule is not None and not self.schedule.admits(at_ms):
            return "outside_schedule"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "cred": self.cred,
            "dev": self.device,
            "subject": self.subject,
            "kind": self.kind.value,
            "secret": _b64(self.secret),
            "from": self.from_ms,
            "until": self.until_ms,
            "issued": self.issued_ms,
            "sched": None if self.schedule is None else self.schedule.to_json(),
            "uses": self.uses,
        }

    @classmethod
    def from_json(cls, value: Any) -> CredentialRecord:
        fields = {"cred", "dev", "subject", "kind", "secret", "from", "until", "issued"}
        if not isinstance(value, dict) or set(value) != fields | {"sched", "uses"}:
            raise _bad("credential record fields")
        try:
            kind = CredentialKind(value["kind"])
        except ValueError:
            raise _bad("unknown credential kind") from None
        sched = value["sched"]
        return cls(
            cred=_text(value["cred"], CREDENTIAL_ID, "cred"),
            device=_text(value["dev"], DEVICE_ID, "dev"),
            subject=_text(value["subject"], SUBJECT, "subject"),
            kind=kind,
            secret=_unb64(value["secret"], "secret", max_bytes=1024),
            from_ms=_int(value["from"], "from"),
            until_ms=_opt_int(value["until"], "until"),
            issued_ms=_int(value["issued"], "issued"),
            schedule=None if sched is None else Schedule.from_json(sched),
            uses=_opt_int(value["uses"], "uses", 1, 1_000_000),
        )


def card_secret(uid: str, card_key: bytes) -> bytes:
    """The ``secret`` of a card credential: uid ‖ ":" ‖ card key."""
    _text(uid, CARD_UID, "card uid")
    if len(card_key) != CARD_KEY_BYTES:
        raise _bad("a card key is 16 bytes")
    return uid.encode() + b":" + card_key


def encode_signer(certificate: Certificate) -> str:
    """The ``cert`` argument of ``access.put`` (and of an eKey at the door): base64 of the
    encoded ACCESS certificate."""
    return _b64(certificate.encode())


def decode_signer(text: Any) -> Certificate:
    """The certificate of an ``access.put``'s ``cert`` argument (``access_malformed`` else)."""
    try:
        return Certificate.decode(_unb64(text, "cert"))
    except IntegrityError:  # CertificateError, or a public key off the curve
        raise _bad("cert does not decode") from None


def split_card_secret(secret: bytes) -> tuple[str, bytes]:
    """(uid, card key) of a card credential's ``secret``."""
    uid, sep, key = secret.partition(b":")
    if not sep or len(key) != CARD_KEY_BYTES:
        raise _bad("card secret is uid:key")
    return _text(uid.decode("ascii", "replace"), CARD_UID, "card uid"), key


def seal_credential(
    record: CredentialRecord,
    *,
    device_public_key: SM2PublicKey,
    sign: Callable[[bytes], bytes],
) -> str:
    """Sign ``record`` with the access key (``sign``), then envelope it to the lock (base64)."""
    record_json = canonical_json(record.to_json())
    signed = canonical_json(
        {"rec": record.to_json(), "sig": _b64(sign(CREDENTIAL_CONTEXT + record_json))}
    )
    key = random_bytes(16)
    nonce = random_bytes(NONCE_BYTES)
    wrapped = device_public_key.encrypt(key)
    aad = BOX_CONTEXT + record.device.encode() + record.cred.encode()
    sealed = sm4_gcm_encrypt(key, nonce, signed, aad)
    return _b64(BOX_MAGIC + bytes([len(wrapped)]) + wrapped + nonce + sealed)


def open_credential(
    box: str,
    *,
    device_id: str,
    cred_id: str,
    decrypt: Callable[[bytes], bytes],
    signer: Certificate,
    ca: SM2PublicKey,
    now_s: int,
) -> CredentialRecord:
    """The lock's side of :func:`seal_credential`: decrypt with its SE (``decrypt``), check the
    signer certificate against the CA and the signature, and that the record is for this lock
    and this credential id. ProtocolError ``access_malformed`` / ``access_bad_signer`` /
    ``access_bad_signature`` / ``access_wrong_device``."""
    raw = _unb64(box, "box")
    if len(raw) < 6 or raw[:4] != BOX_MAGIC or len(raw) < 5 + raw[4] + NONCE_BYTES + 16:
        raise _bad("box layout")
    wrapped_end = 5 + raw[4]
    wrapped, nonce = raw[5:wrapped_end], raw[wrapped_end : wrapped_end + NONCE_BYTES]
    try:
        key = decrypt(wrapped)
        signed = sm4_gcm_decrypt(
            key,
            nonce,
            raw[wrapped_end + NONCE_BYTES :],
            BOX_CONTEXT + device_id.encode() + cred_id.encode(),
        )
        outer = json.loads(signed)
    except ProtocolError:
        raise
    except Exception:
        raise _bad("box does not open for this lock and credential") from None
    if not isinstance(outer, dict) or set(outer) != {"rec", "sig"}:
        raise _bad("signed credential fields")
    check_access_signer(signer, ca, now_s=now_s)
    record = CredentialRecord.from_json(outer["rec"])
    signature = _unb64(outer["sig"], "sig", max_bytes=80)
    if not signer.public_key.verify(
        CREDENTIAL_CONTEXT + canonical_json(record.to_json()), signature
    ):
        raise ProtocolError("access_bad_signature", "credential signature does not verify")
    if record.device != device_id or record.cred != cred_id:
        raise ProtocolError("access_wrong_device", "credential is for another lock or id")
    return record


def check_access_signer(certificate: Certificate, ca: SM2PublicKey, *, now_s: int) -> None:
    """``certificate`` is an ACCESS certificate of ``ca`` valid at ``now_s``."""
    try:
        certificate.verify_as(CertKind.ACCESS, ca, now=now_s)
    except CertificateError as exc:
        raise ProtocolError("access_bad_signer", f"access signer refused ({exc.code})") from None


# --- cards ---------------------------------------------------------------------------------
def card_response(card_key: bytes, *, uid: str, device_id: str, challenge: bytes) -> bytes:
    """A card's answer to a lock's challenge: HMAC-SM3(card key, context ‖ uid ‖ lock ‖ chal).

    A clone that copies only the UID cannot answer; the lock id in the MAC stops a relay of an
    answer meant for another lock, and the fresh challenge stops a replay.
    """
    if len(challenge) != CHALLENGE_BYTES:
        raise _bad("a challenge is 16 bytes")
    message = CARD_CONTEXT + uid.encode() + b"|" + device_id.encode() + b"|" + challenge
    return hmac_sm3(card_key, message)[:CARD_RESPONSE_BYTES]


def card_response_ok(
    card_key: bytes, response: bytes, *, uid: str, device_id: str, challenge: bytes
) -> bool:
    """Constant-time check of a card's answer."""
    expected = card_response(card_key, uid=uid, device_id=device_id, challenge=challenge)
    return hmac.compare_digest(expected, response)


# --- eKeys ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class EKeyToken:
    """A mobile key: the platform certifies a phone's public key for one lock and a window.

    The phone shows the token (as a QR code) or sends it over BLE with a *proof*: its SM2
    signature over the lock's fresh challenge (:func:`ekey_proof_message`), so a copied QR code
    or a recorded BLE exchange does not open the door again.
    """

    key_id: str
    device: str
    subject: str
    holder_key: bytes  # SM2 public key x‖y of the phone
    from_ms: int
    until_ms: int
    epoch: int  # the lock's eKey revocation epoch when issued
    issued_ms: int
    schedule: Schedule | None = None

    def __post_init__(self) -> None:
        _text(self.key_id, CREDENTIAL_ID, "key id")
        _text(self.device, DEVICE_ID, "device")
        _text(self.subject, SUBJECT, "subject")
        if len(self.holder_key) != PUBLIC_KEY_BYTES:
            raise _bad("holder key is 64 bytes")
        if self.until_ms <= self.from_ms:
            raise _bad("until must be after from")
        _int(self.epoch, "epoch", 0, 1 << 31)

    def to_json(self) -> dict[str, Any]:
        return {
            "kid": self.key_id,
            "dev": self.device,
            "subject": self.subject,
            "holder": _b64(self.holder_key),
            "from": self.from_ms,
            "until": self.until_ms,
            "epoch": self.epoch,
            "issued": self.issued_ms,
            "sched": None if self.schedule is None else self.schedule.to_json(),
        }

    @classmethod
    def from_json(cls, value: Any) -> EKeyToken:
        fields = {"kid", "dev", "subject", "holder", "from", "until", "epoch", "issued", "sched"}
        if not isinstance(value, dict) or set(value) != fields:
            raise _bad("eKey token fields")
        sched = value["sched"]
        return cls(
            key_id=_text(value["kid"], CREDENTIAL_ID, "kid"),
            device=_text(value["dev"], DEVICE_ID, "dev"),
            subject=_text(value["subject"], SUBJECT, "subject"),
            holder_key=_unb64(value["holder"], "holder", max_bytes=PUBLIC_KEY_BYTES),
            from_ms=_int(value["from"], "from"),
            until_ms=_int(value["until"], "until"),
            epoch=_int(value["epoch"], "epoch", 0, 1 << 31),
            issued_ms=_int(value["issued"], "issued"),
            schedule=None if sched is None else Schedule.from_json(sched),
        )


def issue_ekey(token: EKeyToken, *, sign: Callable[[bytes], bytes]) -> str:
    """The signed token the phone keeps: b64(canonical {"tok", "sig"}) (platform side)."""
    body = canonical_json(token.to_json())
    return _b64(canonical_json({"tok": token.to_json(), "sig": _b64(sign(EKEY_CONTEXT + body))}))


def ekey_proof_message(challenge: bytes, *, device_id: str, key_id: str) -> bytes:
    """What the phone signs with its own key to answer a lock's challenge."""
    if len(challenge) != CHALLENGE_BYTES:
        raise _bad("a challenge is 16 bytes")
    return EKEY_PROOF_CONTEXT + device_id.encode() + b"|" + key_id.encode() + b"|" + challenge


def check_ekey(
    signed_token: str,
    proof: bytes,
    *,
    signer: Certificate,
    ca: SM2PublicKey,
    device_id: str,
    challenge: bytes,
    now_ms: int,
) -> EKeyToken:
    """The lock's check of a presented eKey: signer → CA, token signature, this lock, the
    window (and schedule), and the holder's proof over *this* challenge. The caller (the lock)
    then applies its own state: revocation epoch, revoked ids, frozen subjects, and makes sure
    the challenge is single-use. ProtocolError with an ``access_*`` code otherwise."""
    check_access_signer(signer, ca, now_s=now_ms // 1000)
    try:
        outer = json.loads(_unb64(signed_token, "token"))
    except ProtocolError:
        raise
    except ValueError:
        raise _bad("token is not JSON") from None
    if not isinstance(outer, dict) or set(outer) != {"tok", "sig"}:
        raise _bad("signed token fields")
    token = EKeyToken.from_json(outer["tok"])
    signature = _unb64(outer["sig"], "sig", max_bytes=80)
    if not signer.public_key.verify(EKEY_CONTEXT + canonical_json(token.to_json()), signature):
        raise ProtocolError("access_bad_signature", "eKey token signature does not verify")
    if token.device != device_id:
        raise ProtocolError("access_wrong_device", "eKey is for another lock")
    try:
        holder = SM2PublicKey(token.holder_key)
    except Exception:
        raise _bad("holder key is not an SM2 point") from None
    message = ekey_proof_message(challenge, device_id=device_id, key_id=token.key_id)
    if not holder.verify(message, proof):
        raise ProtocolError("access_bad_proof", "the holder's proof does not answer this challenge")
    if now_ms < token.from_ms:
        raise ProtocolError("access_not_yet_valid", "eKey not valid yet")
    if now_ms >= token.until_ms:
        raise ProtocolError("access_expired", "eKey expired")
    if token.schedule is not None and not token.schedule.admits(now_ms):
        raise ProtocolError("access_outside_schedule", "eKey outside its schedule")
    return token


# --- signed records from the lock ----------------------------------------------------------
def sign_record(record: Mapping[str, Any], *, sign: Callable[[bytes], bytes]) -> dict[str, Any]:
    """The ``data`` of a signed lock event: ``{"rec", "sig"}`` (``sign`` = the SE's sign)."""
    rec = dict(record)
    _text(rec.get("dev"), DEVICE_ID, "record dev")
    return {"rec": rec, "sig": _b64(sign(RECORD_CONTEXT + canonical_json(rec)))}


def verify_record(data: Any, *, device_id: str, public_key: SM2PublicKey) -> dict[str, Any]:
    """The record of a signed lock event after checking its signature by ``public_key`` (the
    device key from the registry) and that it names ``device_id``."""
    if (
        not isinstance(data, dict)
        or set(data) != {"rec", "sig"}
        or not isinstance(data["rec"], dict)
    ):
        raise _bad("signed record is {rec, sig}")
    rec: dict[str, Any] = data["rec"]
    signature = _unb64(data["sig"], "sig", max_bytes=80)
    if not public_key.verify(RECORD_CONTEXT + canonical_json(rec), signature):
        raise ProtocolError("access_bad_signature", "record signature does not verify")
    if rec.get("dev") != device_id:
        raise ProtocolError("access_wrong_device", "record names another device")
    return rec
