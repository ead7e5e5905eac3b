"""The secure element's vocabulary: error codes, key usages, lifecycle, factory record."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from anju.errors import CryptoError, IntegrityError
from anju.kit.crypto import SM2PublicKey

SE_VERSION = "anju-soft-se/1.0"
ALGORITHMS = ("SM2", "SM3", "SM4-GCM", "HMAC-SM3", "HKDF-SM3")
HMAC_INFO = b"anju/se/hmac/v1:"
SEAL_INFO = b"anju/se/seal/v1:"
STATE_CONTEXT = b"anju/se-state/v1"
DEFAULT_PIN_TRIES = 5
DEFAULT_FAILURE_THRESHOLD = 16
MAX_SECRETS = 32

#: Stable codes of :class:`SecureElementError`.
CODES: dict[str, str] = {
    "se_zeroized": "the SE destroyed its keys (tamper response) and is permanently unusable",
    "se_not_manufactured": "no SE here, or it was never personalised",
    "se_already_manufactured": "manufacture is allowed once per SE",
    "se_fuses_corrupt": "the fused identity/storage key file is damaged",
    "se_state_missing": "the SE is personalised but its sealed state is gone",
    "se_state_corrupt": "the sealed state does not authenticate (tampered, moved, wrong key)",
    "se_storage_io": "the SE could not write its state; the previous state is intact",
    "se_self_test_failed": "an algorithm known-answer or consistency test failed",
    "se_pin_required": "verify the PIN before using keys",
    "se_wrong_pin": "wrong PIN (details: tries_left)",
    "se_bad_input": "argument has the wrong form or size",
    "se_usage_denied": "the key's usage flags do not allow this operation",
    "se_secret_not_found": "no stored secret with that name",
    "se_secret_exists": "a secret with that name exists (pass replace=True)",
    "se_secret_limit": "the secret slots are full",
    "se_decrypt_failed": "SM2 ciphertext did not decrypt (counts as a failed operation)",
    "se_internal_error": "an unexpected fault; no detail is disclosed",
}


class SecureElementError(CryptoError):
    """An SE operation was refused or failed; ``code`` says why (one of :data:`CODES`)."""

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown secure element error code {code!r}")
        super().__init__(message, details=details)
        self.code = code  # type: ignore[misc]


class SecureElementDecryptError(SecureElementError, IntegrityError):
    """SM2 decryption failed; also an IntegrityError, like ``SM2PrivateKey.decrypt``."""


class KeyUsage(enum.Flag):
    """What a key inside the SE may be used for; checked on every operation."""

    SIGN = enum.auto()
    DECRYPT = enum.auto()
    DERIVE = enum.auto()  # session keys (design: HKDF-SM3 over root ‖ Kp)
    HMAC = enum.auto()
    SEAL = enum.auto()  # storage sealing keys
    VERIFY = enum.auto()  # constant-time comparison against a stored secret


#: Usage of the SE's fixed keys. A stored secret carries its own usage (HMAC and/or VERIFY).
KEY_USAGE: dict[str, KeyUsage] = {
    "device": KeyUsage.SIGN | KeyUsage.DECRYPT,
    "root": KeyUsage.DERIVE | KeyUsage.HMAC,
    "data": KeyUsage.SEAL,
}
SECRET_USAGES = KeyUsage.HMAC | KeyUsage.VERIFY


class Lifecycle(enum.Enum):
    """Blank (fused identity only) → locked (personalised, keys sealed inside) → zeroized."""

    BLANK = "blank"
    LOCKED = "locked"
    ZEROIZED = "zeroized"


@dataclass(frozen=True)
class FactoryRecord:
    """What leaves the SE once, at manufacture: the platform's copy of the root key."""

    device_id: str
    se_id: str
    se_version: str
    public_key: SM2PublicKey
    root_key: bytes = field(repr=False)


@dataclass(frozen=True)
class SeInfo:
    """Non-secret facts about an SE (readable without the PIN)."""

    se_id: str
    device_id: str | None
    version: str
    lifecycle: Lifecycle
    algorithms: tuple[str, ...]
    pin_tries_left: int | None
    failures: int | None
    failure_threshold: int | None


_HEX32 = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"[a-z0-9][a-z0-9._/-]{0,63}")


def bad_input(message: str) -> SecureElementError:
    return SecureElementError("se_bad_input", message)


def check_id(value: str, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise bad_input(f"{what} must be 32 lowercase hex characters")
    return bytes.fromhex(value)


def check_name(value: str, what: str) -> bytes:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise bad_input(f"{what} must match [a-z0-9][a-z0-9._/-]{{0,63}}")
    return value.encode()


def check_pin(pin: bytes) -> None:
    if not isinstance(pin, bytes) or not 4 <= len(pin) <= 64:
        raise bad_input("PIN must be 4 to 64 bytes")
