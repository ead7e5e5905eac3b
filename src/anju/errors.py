"""Typed domain errors. Each has a stable machine-readable ``code`` and an HTTP status.

The HTTP layer renders every one of them as ``{"error": {"code", "message", "details"}}``;
codes are part of the public API and never change meaning once released.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AnjuError(Exception):
    """Base of every error anju raises on purpose."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(AnjuError):
    status, code = 422, "invalid_input"


class NotFound(AnjuError):
    status, code = 404, "not_found"


class Conflict(AnjuError):
    status, code = 409, "conflict"


class Unauthenticated(AnjuError):
    status, code = 401, "unauthenticated"


class Forbidden(AnjuError):
    status, code = 403, "forbidden"


class SecondFactorRequired(AnjuError):
    status, code = 403, "second_factor_required"


class AccountLocked(AnjuError):
    status, code = 423, "account_locked"


class PayloadTooLarge(AnjuError):
    status, code = 413, "payload_too_large"


class WeakPassword(AnjuError):
    status, code = 422, "weak_password"


class CryptoError(AnjuError):
    """A cryptographic operation failed (bad key, bad input)."""

    status, code = 500, "crypto_error"


class IntegrityError(CryptoError):
    """Ciphertext or signature did not authenticate: tampered, wrong key or wrong context."""

    status, code = 400, "integrity_check_failed"


class KeyUnavailable(CryptoError):
    """A needed key is missing, shredded, retired or below the minimum decryption version."""

    status, code = 410, "key_unavailable"


class ConfigurationError(AnjuError):
    """The platform cannot start or run as configured (missing or wrong key, bad settings)."""

    status, code = 500, "configuration_error"
