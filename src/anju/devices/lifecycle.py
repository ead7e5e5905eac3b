"""The one place for device vocabulary and lifecycle rules: types, places, statuses, claim codes.

State machine (docs/devices.md)::

    manufactured ──register──▶ registered ──first handshake──▶ active ◀──resume── suspended
         │                        │                              └──────suspend──────▶┘
         └────────────┬───────────┴──────────────┬───────────────────────────────┘
                   revoke ──▶ revoked            decommission (from any state but itself)
                                  └──────────────▶ decommissioned (terminal, root key destroyed)
"""

from __future__ import annotations

import base64
import hmac
import re
from enum import StrEnum

from anju.errors import AnjuError, Conflict, Forbidden
from anju.kit.crypto import hmac_sm3

DEVICE_TYPES = (
    "lock",
    "gateway",
    "meter",
    "smoke_detector",
    "fire_detector",
    "access_gate",
    "camera",
    "intercom",
)
PLACE_KINDS = ("room", "door", "building_entrance", "gate", "common_door")
#: Reasons an operator may give for suspending, revoking or decommissioning (no free text, so
#: nothing personal can slip into the permanent records).
REASONS = ("compromised", "lost", "stolen", "faulty", "replaced", "end_of_life", "maintenance")

HEX_ID = re.compile(r"^[0-9a-f]{32}$")
PRODUCT_KEY = re.compile(r"^[a-z0-9-]{1,64}$")
PLACE_REF = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")

ROOT_KEY_BYTES = 16
ROOT_KEY_INFO = b"anju/device-root-key/v1"
CLAIM_INFO = b"anju/claim/v1"
CLAIM_CODE_BYTES = 8
MAX_CLAIM_FAILURES = 10


class Status(StrEnum):
    MANUFACTURED = "manufactured"
    REGISTERED = "registered"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    DECOMMISSIONED = "decommissioned"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.MANUFACTURED: frozenset({Status.REGISTERED, Status.REVOKED, Status.DECOMMISSIONED}),
    Status.REGISTERED: frozenset({Status.ACTIVE, Status.REVOKED, Status.DECOMMISSIONED}),
    Status.ACTIVE: frozenset({Status.SUSPENDED, Status.REVOKED, Status.DECOMMISSIONED}),
    Status.SUSPENDED: frozenset({Status.ACTIVE, Status.REVOKED, Status.DECOMMISSIONED}),
    Status.REVOKED: frozenset({Status.DECOMMISSIONED}),
    Status.DECOMMISSIONED: frozenset(),
}
#: Statuses whose certificate the gateway accepts at the handshake.
HANDSHAKE_STATUSES = frozenset({Status.REGISTERED, Status.ACTIVE})


class IllegalTransition(Conflict):
    code = "illegal_transition"


class ClaimRefused(Forbidden):
    code = "claim_code_invalid"


class ClaimLocked(AnjuError):
    status, code = 423, "claim_locked"


class TooManyRequests(AnjuError):
    status, code = 429, "too_many_requests"


class RegistrationRefused(Forbidden):
    code = "registration_refused"


#: Operations that reach a status only from some of the statuses allowed to reach it
#: (registered → active happens at the first handshake, never by "resume").
ONLY_FROM: dict[str, frozenset[Status]] = {"resumed": frozenset({Status.SUSPENDED})}


def check_transition(current: str, target: Status, operation: str | None = None) -> None:
    """Refuse a status change the state machine (and the operation) does not allow."""
    allowed = TRANSITIONS.get(Status(current), frozenset())
    sources = ONLY_FROM.get(operation or "")
    if target not in allowed or (sources is not None and Status(current) not in sources):
        raise IllegalTransition(
            f"设备状态不允许此操作 / a {current} device cannot become {target.value}",
            details={
                "status": current,
                "target": target.value,
                "allowed": sorted(s.value for s in allowed),
            },
        )


def claim_code(root_key: bytes) -> str:
    """The label's claim code: base32 of HMAC-SM3(root key, "anju/claim/v1")[:8], grouped."""
    raw = base64.b32encode(hmac_sm3(root_key, CLAIM_INFO)[:CLAIM_CODE_BYTES]).decode()
    code = raw.rstrip("=")  # 13 characters
    return f"{code[:4]}-{code[4:8]}-{code[8:]}"


def claim_code_matches(root_key: bytes, presented: str) -> bool:
    """Constant-time check of a typed claim code (case, spaces and hyphens ignored)."""
    normalised = re.sub(r"[\s-]", "", presented).upper().encode()
    expected = claim_code(root_key).replace("-", "").encode()
    return hmac.compare_digest(normalised, expected)


def root_key_aad(device_id: str) -> bytes:
    """Associated data binding a wrapped root key to its device."""
    return ROOT_KEY_INFO + bytes.fromhex(device_id)


def product_secret_aad(product_key: str) -> bytes:
    """Associated data binding a wrapped product secret to its product."""
    return b"anju/product-secret/v1" + product_key.encode()
