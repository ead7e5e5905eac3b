"""Who is calling and what sign-in hands out: principals, issued credentials, login names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from anju.accounts.models import ApiKey
from anju.accounts.roles import Cap, Role
from anju.errors import Forbidden, InvalidInput, Unauthenticated
from anju.kit.crypto import sm3

API_KEY_PREFIX = "anju_"
MAX_TOKEN_LENGTH = 200
LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")


class PasswordChangeRequired(Forbidden):
    code = "password_change_required"


class SecondFactorInvalid(Forbidden):
    code = "second_factor_invalid"


def bad_credentials() -> Unauthenticated:
    # One message for unknown login, wrong password, wrong code and disabled account.
    return Unauthenticated("登录名或密码错误 / wrong login name or password")


def normalise_login(login: str) -> str:
    """Login names compare case-insensitively; store and look up the folded form."""
    return login.strip().casefold()


def validate_login(login: str) -> str:
    """The normalised login name, or ``InvalidInput`` when it has a disallowed shape."""
    folded = normalise_login(login)
    if not LOGIN_PATTERN.match(folded):
        raise InvalidInput(
            "登录名须为 2–64 个小写字母、数字或 . _ @ - / a login name is 2–64 characters of "
            "letters, digits and . _ @ -",
        )
    return folded


def token_hash(token: str) -> bytes:
    """What is stored for a bearer secret: its SM3 hash (the secret has 256 random bits)."""
    return sm3(token.encode("utf-8"))


@dataclass(frozen=True)
class Principal:
    """Who is calling: a signed-in account or an integration API key, with its organisation."""

    kind: Literal["account", "apikey"]
    id: str
    org_id: str | None
    roles: frozenset[Role]
    capabilities: frozenset[Cap]
    session_id: str | None = None
    second_factor_at: datetime | None = None
    must_change_password: bool = False

    @property
    def actor(self) -> str:
        """The audit actor string, e.g. ``account:<id>``."""
        return f"{self.kind}:{self.id}"

    def has(self, capability: Cap) -> bool:
        return capability in self.capabilities


@dataclass(frozen=True)
class IssuedSession:
    token: str  # shown once
    session_id: str
    account_id: str
    expires_at: datetime
    second_factor_verified: bool
    must_change_password: bool


@dataclass(frozen=True)
class PasswordCheck:
    """Result of the argon2 check :func:`sign_in` makes outside the write transaction."""

    account_id: str | None
    checked_hash: str | None
    matched: bool
    rehashed: str | None  # a new hash when the parameters changed and the password matched


@dataclass(frozen=True)
class IssuedApiKey:
    token: str  # shown once
    key: ApiKey
