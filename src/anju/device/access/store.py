"""The lock's sealed credential store (docs/device-sdk.md, "Access control").

One record in an A/B :class:`~anju.device.storage.SlotStore` sealed with an SE-only storage key:
the credentials this lock honours, the people whose access is frozen, the eKey revocation state,
the ACCESS signer certificates it has verified, and the offline code book's state. Nothing secret
is ever at rest in clear: a passcode is kept only as ``se.hmac("passcode", digits)`` (the typed
digits are looked up by that digest), a card's UID and key and everything else live inside the
sealed record. Removing a person rewrites both slots, so the older slot keeps no copy either.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from anju.device.storage import SlotStore
from anju.protocol.access import CredentialKind, CredentialRecord, Schedule
from anju.protocol.messages import canonical_json

#: Verified ACCESS signer certificates kept for eKeys presented without one (newest first).
MAX_SIGNERS = 4
#: Revoked eKey ids remembered; the platform raises the epoch before this fills up.
MAX_REVOKED_EKEYS = 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


@dataclass
class StoredCredential:
    """One credential as kept in the sealed store (no passcode digits: only their digest)."""

    cred: str
    subject: str
    kind: CredentialKind
    from_ms: int
    until_ms: int | None
    issued_ms: int
    schedule: Schedule | None
    uses_left: int | None  # None = unlimited
    digest: bytes = b""  # passcode: se.hmac(PASSCODE_LABEL, digits)
    card_uid: str = ""
    card_key: bytes = b""

    def admits(self, at_ms: int) -> str | None:
        """None when validity, schedule and use count admit ``at_ms``, else the reason code."""
        if at_ms < self.from_ms:
            return "not_yet_valid"
        if self.until_ms is not None and at_ms >= self.until_ms:
            return "expired"
        if self.schedule is not None and not self.schedule.admits(at_ms):
            return "outside_schedule"
        if self.uses_left is not None and self.uses_left <= 0:
            return "uses_exhausted"
        return None

    @classmethod
    def from_record(
        cls, record: CredentialRecord, *, digest: bytes, uid: str, key: bytes
    ) -> StoredCredential:
        """The stored form of an opened credential (its clear secret already reduced)."""
        return cls(
            cred=record.cred,
            subject=record.subject,
            kind=record.kind,
            from_ms=record.from_ms,
            until_ms=record.until_ms,
            issued_ms=record.issued_ms,
            schedule=record.schedule,
            uses_left=record.uses,
            digest=digest,
            card_uid=uid,
            card_key=key,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "cred": self.cred,
            "subject": self.subject,
            "kind": self.kind.value,
            "from": self.from_ms,
            "until": self.until_ms,
            "issued": self.issued_ms,
            "sched": None if self.schedule is None else self.schedule.to_json(),
            "uses": self.uses_left,
            "digest": _b64(self.digest),
            "uid": self.card_uid,
            "key": _b64(self.card_key),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> StoredCredential:
        sched = doc["sched"]
        return cls(
            cred=doc["cred"],
            subject=doc["subject"],
            kind=CredentialKind(doc["kind"]),
            from_ms=int(doc["from"]),
            until_ms=doc["until"],
            issued_ms=int(doc["issued"]),
            schedule=None if sched is None else Schedule.from_json(sched),
            uses_left=doc["uses"],
            digest=_unb64(doc["digest"]),
            card_uid=doc["uid"],
            card_key=_unb64(doc["key"]),
        )


@dataclass
class AccessState:
    """Everything the lock keeps about access, loaded from and saved to the sealed record."""

    credentials: dict[str, StoredCredential] = field(default_factory=dict)
    frozen: set[str] = field(default_factory=set)
    ekey_epoch: int = 0
    revoked_ekeys: list[str] = field(default_factory=list)
    signers: list[bytes] = field(default_factory=list)  # encoded ACCESS certificates
    offline: dict[str, Any] | None = None  # the offline code book's to_dict()


class CredentialStore:
    """The sealed access record with lookups by credential id, passcode digest and card UID."""

    def __init__(self, store: SlotStore, *, capacity: int) -> None:
        self._store = store
        self.capacity = capacity
        self.state = AccessState()
        self._load()

    def _load(self) -> None:
        raw = self._store.read()
        if raw is None:
            return
        doc = json.loads(raw)
        self.state = AccessState(
            credentials={c["cred"]: StoredCredential.from_json(c) for c in doc["credentials"]},
            frozen=set(doc["frozen"]),
            ekey_epoch=int(doc["ekey_epoch"]),
            revoked_ekeys=list(doc["revoked_ekeys"]),
            signers=[_unb64(s) for s in doc["signers"]],
            offline=doc["offline"],
        )

    def save(self, *, both_slots: bool = False) -> None:
        """Write the record durably; ``both_slots`` also overwrites the older slot (removals)."""
        state = self.state
        payload = canonical_json(
            {
                "credentials": [c.to_json() for c in state.credentials.values()],
                "frozen": sorted(state.frozen),
                "ekey_epoch": state.ekey_epoch,
                "revoked_ekeys": state.revoked_ekeys,
                "signers": [_b64(s) for s in state.signers],
                "offline": state.offline,
            }
        )
        self._store.write(payload)
        if both_slots:
            self._store.write(payload)

    def by_digest(self, digest: bytes) -> StoredCredential | None:
        """The passcode credential whose digest is ``digest``."""
        for credential in self.state.credentials.values():
            if credential.kind == CredentialKind.PASSCODE and credential.digest == digest:
                return credential
        return None

    def by_card(self, uid: str) -> StoredCredential | None:
        """The card credential for a card UID."""
        for credential in self.state.credentials.values():
            if credential.kind == CredentialKind.CARD and credential.card_uid == uid:
                return credential
        return None

    def of_subject(self, subject: str) -> list[StoredCredential]:
        """Every credential of one person."""
        return [c for c in self.state.credentials.values() if c.subject == subject]

    def has_room_for(self, cred: str) -> bool:
        """Whether a put of ``cred`` fits (a replacement always does)."""
        return cred in self.state.credentials or len(self.state.credentials) < self.capacity

    def remember_signer(self, encoded: bytes) -> None:
        """Keep a verified ACCESS certificate (newest first, bounded)."""
        signers = [encoded, *(s for s in self.state.signers if s != encoded)]
        self.state.signers = signers[:MAX_SIGNERS]

    def revoke_ekeys(self, key_ids: list[str]) -> None:
        """Add eKey ids to the revocation list (bounded: the oldest fall off)."""
        revoked = self.state.revoked_ekeys + [
            k for k in key_ids if k not in self.state.revoked_ekeys
        ]
        self.state.revoked_ekeys = revoked[-MAX_REVOKED_EKEYS:]
