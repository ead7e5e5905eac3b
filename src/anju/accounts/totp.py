"""TOTP second factor (RFC 6238, 30 s steps, 6 digits, SHA-1 for authenticator-app support).

Secrets are stored only wrapped by the key provider (SM4-GCM under the current master key, AAD
bound to the account), so they rotate with the master keys and never sit in the database clear.
A code is accepted in the step before, at, or after now (±30 s clock drift) and only for a step
later than the last one used, so an observed code cannot be replayed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

import pyotp

from anju.kit.keyring import KeyProvider

STEP_SECONDS = 30
DIGITS = 6
WINDOW_STEPS = 1
ISSUER = "anju"


def new_secret() -> str:
    """A fresh 160-bit base32 secret from the OS CSPRNG."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, *, login: str) -> str:
    """The otpauth:// URI an authenticator app scans (shown once)."""
    return str(
        pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
            name=login, issuer_name=ISSUER
        )
    )


def step_at(moment: datetime) -> int:
    """The TOTP time step containing ``moment``."""
    return int(moment.timestamp()) // STEP_SECONDS


def code_at(secret: str, moment: datetime) -> str:
    """The code valid at ``moment`` (for tests and the enrolment check)."""
    return str(
        pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step_at(moment))
    )


@dataclass(frozen=True)
class Match:
    step: int


def match_code(secret: str, code: str, *, now: datetime, last_step: int | None) -> Match | None:
    """The step ``code`` belongs to within ±1 step of ``now`` and after ``last_step``, or None."""
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = step_at(now)
    found: Match | None = None
    for step in range(current - WINDOW_STEPS, current + WINDOW_STEPS + 1):
        # Compare every candidate (no early exit) so timing does not reveal which step matched.
        if hmac.compare_digest(str(otp.generate_otp(step)), code) and found is None:
            found = Match(step)
    if found is None or (last_step is not None and found.step <= last_step):
        return None
    return found


def _aad(account_id: str, slot: str) -> bytes:
    return f"anju/accounts/totp/{slot}/{account_id}".encode()


def seal_secret(keys: KeyProvider, secret: str, *, account_id: str, slot: str) -> bytes:
    """The secret wrapped for storage, bound to the account and slot ("active" or "pending")."""
    return keys.wrap(secret.encode("ascii"), _aad(account_id, slot))


def open_secret(keys: KeyProvider, sealed: bytes, *, account_id: str, slot: str) -> str:
    """Unwrap a stored secret (``IntegrityError`` when moved to another account or slot)."""
    return keys.unwrap(sealed, _aad(account_id, slot)).decode("ascii")
