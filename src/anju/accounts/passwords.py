"""Password hashing (argon2id) and the complexity policy (R17, F1).

Parameters: argon2id, time_cost 3, memory 64 MiB, parallelism 1, 16-byte salt, 32-byte tag —
about 0.145 s of one CPU core per hash on the reference machine (see docs/accounts.md and
``bench/bench_accounts.py``). Hashing runs in a worker thread: argon2-cffi releases the GIL,
so a login does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import secrets
import string
from dataclasses import dataclass
from functools import cached_property

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from anju.errors import WeakPassword

MAX_PASSWORD_LENGTH = 256


@dataclass(frozen=True)
class Argon2Params:
    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16


DEFAULT_ARGON2 = Argon2Params()


class Passwords:
    """Hash and verify passwords; knows when a stored hash needs the current parameters."""

    def __init__(self, params: Argon2Params = DEFAULT_ARGON2) -> None:
        self.params = params
        self._hasher = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=params.hash_len,
            salt_len=params.salt_len,
            type=Type.ID,
        )

    @cached_property
    def _dummy_hash(self) -> str:
        # Verified against when the login name is unknown, so that case costs the same time.
        return self._hasher.hash(secrets.token_urlsafe(24))

    async def hash(self, password: str) -> str:
        """An argon2id hash string of ``password`` (PHC format, salt included)."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash`` (constant time inside argon2)."""
        return await asyncio.to_thread(self._verify_sync, stored_hash, password)

    async def burn_time(self, password: str) -> None:
        """Spend the same work as a real verification (unknown login names)."""
        await asyncio.to_thread(self._verify_sync, self._dummy_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when ``stored_hash`` was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def _verify_sync(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


# Very common passwords (and keyboard walks) that pass a length / class check but are guessed
# first. Compared case-insensitively. Short classics are listed too for lower minimum lengths.
COMMON_PASSWORDS: frozenset[str] = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "password1234",
        "password@123",
        "password!123",
        "p@ssw0rd",
        "p@ssw0rd123",
        "p@ssw0rd1234",
        "passw0rd1234",
        "12345678",
        "123456789",
        "1234567890",
        "12345678910",
        "123456789012",
        "1234567890ab",
        "abc123456789",
        "abcd12345678",
        "abcd@1234567",
        "qwerty123456",
        "qwertyuiop12",
        "qwertyuiop123",
        "qwer1234!@#$",
        "qwer1234qwer",
        "1qaz2wsx3edc",
        "1qaz@wsx3edc",
        "1qaz!qaz2wsx",
        "zaq12wsxcde3",
        "admin1234567",
        "admin@123456",
        "admin@12345678",
        "administrator",
        "administrator1",
        "aa123456789!",
        "aa1234567890",
        "welcome12345",
        "welcome@1234",
        "letmein12345",
        "iloveyou1234",
        "woaini1314520",
        "woaini520520",
        "5201314520131",
        "huawei@12345",
        "changeme1234",
        "changeme@123",
        "root@1234567",
        "test@1234567",
        "anju@1234567",
        "anju12345678",
        "111111111111",
        "000000000000",
        "888888888888",
        "a1b2c3d4e5f6",
        "asdfghjkl123",
        "zxcvbnm12345",
    }
)


@dataclass(frozen=True)
class PolicyFailure:
    code: str
    message: str  # zh-CN first, English alongside


def _classes(password: str) -> int:
    lower = any(c.islower() and c.isascii() for c in password)
    upper = any(c.isupper() and c.isascii() for c in password)
    digit = any(c.isdigit() and c.isascii() for c in password)
    other = any(not (c.isascii() and c.isalnum()) for c in password)
    return sum((lower, upper, digit, other))


def policy_failures(password: str, *, login: str, min_length: int) -> list[PolicyFailure]:
    """Every reason ``password`` is refused for the account ``login`` (empty when acceptable)."""
    failures: list[PolicyFailure] = []
    if len(password) < min_length:
        failures.append(
            PolicyFailure(
                "too_short",
                f"密码至少需要 {min_length} 个字符 / at least {min_length} characters are required",
            )
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        failures.append(
            PolicyFailure(
                "too_long",
                f"密码不能超过 {MAX_PASSWORD_LENGTH} 个字符 / at most "
                f"{MAX_PASSWORD_LENGTH} characters are allowed",
            )
        )
    if _classes(password) < 3:
        failures.append(
            PolicyFailure(
                "too_few_character_classes",
                "密码需包含小写字母、大写字母、数字、符号中的至少三类 / use at least three of: "
                "lower-case letters, upper-case letters, digits, symbols",
            )
        )
    folded = password.casefold()
    if len(login) >= 3 and login.casefold() in folded:
        failures.append(
            PolicyFailure(
                "contains_login",
                "密码不能包含登录名 / the password must not contain the login name",
            )
        )
    if folded in COMMON_PASSWORDS:
        failures.append(
            PolicyFailure(
                "too_common",
                "该密码过于常见，容易被猜中 / this password is too common and easily guessed",
            )
        )
    return failures


def check_password_policy(password: str, *, login: str, min_length: int) -> None:
    """Raise ``WeakPassword`` with every reason when ``password`` fails the policy."""
    failures = policy_failures(password, login=login, min_length=min_length)
    if failures:
        raise WeakPassword(
            "密码不符合安全要求 / the password does not meet the policy: "
            + "; ".join(f.message for f in failures),
            details={"reasons": [{"code": f.code, "message": f.message} for f in failures]},
        )


_TEMP_ALPHABET = string.ascii_letters + string.digits + "-._~!@#%"


def temporary_password(length: int = 20) -> str:
    """A random one-time password that itself passes the policy (shown once, changed at login)."""
    while True:
        candidate = "".join(secrets.choice(_TEMP_ALPHABET) for _ in range(length))
        if _classes(candidate) == 4:
            return candidate
