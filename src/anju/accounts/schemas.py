"""Request and response bodies (pydantic). Every input string has a length limit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from anju.accounts.passwords import MAX_PASSWORD_LENGTH

Login = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
TotpCode = Annotated[str, StringConstraints(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")]
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LoginIn(_In):
    login: Login
    password: Password
    totp_code: TotpCode | None = None


class LoginOut(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_at: datetime
    second_factor_verified: bool
    must_change_password: bool


class SecondFactorIn(_In):
    code: TotpCode


class SecondFactorOut(BaseModel):
    verified_until: datetime


class PasswordChangeIn(_In):
    current_password: Password
    new_password: Password


class TotpEnrolOut(BaseModel):
    otpauth_uri: str


class TotpConfirmIn(_In):
    code: TotpCode


class AccountOut(BaseModel):
    id: str
    org_id: str | None
    login: str
    display_name: str
    status: str
    roles: list[str]
    locked: bool
    second_factor_enrolled: bool
    must_change_password: bool
    created_at: datetime
    password_changed_at: datetime


class MeOut(AccountOut):
    capabilities: list[str]
    second_factor_verified_at: datetime | None


class AccountCreateIn(_In):
    login: Login
    display_name: Name


class AccountCreatedOut(BaseModel):
    account: AccountOut
    temporary_password: str  # shown once; must be changed at first sign-in


class RoleGrantIn(_In):
    role: RoleName


class RolesOut(BaseModel):
    account_id: str
    roles: list[str]


class TemporaryPasswordOut(BaseModel):
    temporary_password: str


class ApiKeyCreateIn(_In):
    name: Name
    roles: Annotated[list[RoleName], Field(min_length=1, max_length=8)]
    ttl_days: Annotated[int | None, Field(ge=1, le=3650)] = None


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    roles: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreatedOut(BaseModel):
    key: ApiKeyOut
    token: str  # shown once
