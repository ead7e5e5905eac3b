"""HTTP endpoints under /api/v1: sign-in, own account, accounts, roles and API keys.

These endpoints open their own transactions through :func:`run_boundary` (not the shared
per-request session) so a failed sign-in still commits its failure counter and audit entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Response, status

from anju.accounts.deps import BearerToken
from anju.accounts.models import Account, ApiKey
from anju.accounts.principal import Principal
from anju.accounts.roles import capabilities_of, parse_role
from anju.accounts.schemas import (
    AccountCreatedOut,
    AccountCreateIn,
    AccountOut,
    ApiKeyCreatedOut,
    ApiKeyCreateIn,
    ApiKeyOut,
    LoginIn,
    LoginOut,
    MeOut,
    PasswordChangeIn,
    RoleGrantIn,
    RolesOut,
    SecondFactorIn,
    SecondFactorOut,
    TemporaryPasswordOut,
    TotpConfirmIn,
    TotpEnrolOut,
)
from anju.accounts.service import AccountService, run_boundary, sign_in
from anju.api.deps import PlatformDep
from anju.platform import Platform

T = TypeVar("T")

IdPath = Annotated[str, Path(min_length=1, max_length=36)]
RolePath = Annotated[str, Path(min_length=1, max_length=32)]

router = APIRouter(prefix="/api/v1", tags=["accounts"])


async def _signed_in(
    platform: Platform,
    token: str,
    work: Callable[[AccountService, Principal], Awaitable[T]],
    *,
    allow_password_change: bool = False,
) -> T:
    async def go(service: AccountService) -> T:
        principal = await service.authenticate(token, allow_password_change=allow_password_change)
        return await work(service, principal)

    return await run_boundary(platform, go)


def _account_out(account: Account, roles: list[str], now: datetime) -> AccountOut:
    return AccountOut(
        id=account.id,
        org_id=account.org_id,
        login=account.login,
        display_name=account.display_name,
        status=account.status,
        roles=roles,
        locked=account.locked_until is not None and account.locked_until > now,
        second_factor_enrolled=account.has_totp,
        must_change_password=account.must_change_password,
        created_at=account.created_at,
        password_changed_at=account.password_changed_at,
    )


def _key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        roles=key.roles.split(),
        created_by=key.created_by,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


# --- sign-in -------------------------------------------------------------------------------
@router.post("/auth/login", response_model=LoginOut)
async def login(body: LoginIn, platform: PlatformDep) -> LoginOut:
    """Sign in with login name and password (and optionally a TOTP code to step up at once)."""
    issued = await sign_in(platform, body.login, body.password, body.totp_code)
    return LoginOut(
        token=issued.token,
        expires_at=issued.expires_at,
        second_factor_verified=issued.second_factor_verified,
        must_change_password=issued.must_change_password,
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(token: BearerToken, platform: PlatformDep) -> Response:
    """End the current session."""
    await _signed_in(platform, token, lambda s, p: s.logout(p), allow_password_change=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/auth/second-factor", response_model=SecondFactorOut)
async def second_factor(
    body: SecondFactorIn, token: BearerToken, platform: PlatformDep
) -> SecondFactorOut:
    """Step up: verify a TOTP code so sensitive operations are allowed for a while."""
    until = await _signed_in(platform, token, lambda s, p: s.step_up(p, body.code))
    return SecondFactorOut(verified_until=until)


# --- own account ---------------------------------------------------------------------------
@router.get("/me", response_model=MeOut)
async def me(token: BearerToken, platform: PlatformDep) -> MeOut:
    """The signed-in account, its roles and capabilities."""

    async def work(service: AccountService, principal: Principal) -> MeOut:
        account = await service.own_account(principal)
        roles = await service.roles_of(account.id)
        base = _account_out(account, roles, service.clock.now())
        caps = capabilities_of(parse_role(r) for r in roles)
        return MeOut(
            **base.model_dump(),
            capabilities=sorted(c.value for c in caps),
            second_factor_verified_at=principal.second_factor_at,
        )

    return await _signed_in(platform, token, work, allow_password_change=True)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: PasswordChangeIn, token: BearerToken, platform: PlatformDep
) -> Response:
    """Change one's own password; the current password is required."""
    await _signed_in(
        platform,
        token,
        lambda s, p: s.change_password(p, body.current_password, body.new_password),
        allow_password_change=True,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/me/totp/enroll", response_model=TotpEnrolOut)
async def totp_enroll(token: BearerToken, platform: PlatformDep) -> TotpEnrolOut:
    """Start TOTP enrolment: the otpauth:// URI is shown once."""
    uri = await _signed_in(platform, token, lambda s, p: s.enrol_totp(p))
    return TotpEnrolOut(otpauth_uri=uri)


@router.post("/me/totp/confirm", status_code=status.HTTP_204_NO_CONTENT)
async def totp_confirm(body: TotpConfirmIn, token: BearerToken, platform: PlatformDep) -> Response:
    """Activate the enrolled TOTP secret with its first valid code."""
    await _signed_in(platform, token, lambda s, p: s.confirm_totp(p, body.code))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- accounts of one's organisation --------------------------------------------------------
@router.get("/accounts", response_model=list[AccountOut])
async def list_accounts(token: BearerToken, platform: PlatformDep) -> list[AccountOut]:
    """Accounts of the caller's organisation."""

    async def work(service: AccountService, principal: Principal) -> list[AccountOut]:
        now = service.clock.now()
        return [_account_out(a, r, now) for a, r in await service.list_accounts(principal)]

    return await _signed_in(platform, token, work)


@router.post("/accounts", response_model=AccountCreatedOut, status_code=status.HTTP_201_CREATED)
async def create_account(
    body: AccountCreateIn, token: BearerToken, platform: PlatformDep
) -> AccountCreatedOut:
    """Create an account in the caller's organisation with a one-time temporary password."""

    async def work(service: AccountService, principal: Principal) -> AccountCreatedOut:
        account, temp = await service.create_account(
            principal, login=body.login, display_name=body.display_name
        )
        return AccountCreatedOut(
            account=_account_out(account, [], service.clock.now()), temporary_password=temp
        )

    return await _signed_in(platform, token, work)


@router.get("/accounts/{account_id}", response_model=AccountOut)
async def get_account(account_id: IdPath, token: BearerToken, platform: PlatformDep) -> AccountOut:
    """One account of the caller's organisation (404 for any other organisation's)."""

    async def work(service: AccountService, principal: Principal) -> AccountOut:
        account = await service.account_for(principal, account_id)
        return _account_out(account, await service.roles_of(account.id), service.clock.now())

    return await _signed_in(platform, token, work)


@router.post("/accounts/{account_id}/roles", response_model=RolesOut)
async def grant_role(
    account_id: IdPath, body: RoleGrantIn, token: BearerToken, platform: PlatformDep
) -> RolesOut:
    """Grant a role (security administrators, after a second-factor step-up)."""
    roles = await _signed_in(platform, token, lambda s, p: s.grant_role(p, account_id, body.role))
    return RolesOut(account_id=account_id, roles=roles)


@router.delete("/accounts/{account_id}/roles/{role}", response_model=RolesOut)
async def revoke_role(
    account_id: IdPath, role: RolePath, token: BearerToken, platform: PlatformDep
) -> RolesOut:
    """Revoke a role (security administrators, after a second-factor step-up)."""
    roles = await _signed_in(platform, token, lambda s, p: s.revoke_role(p, account_id, role))
    return RolesOut(account_id=account_id, roles=roles)


@router.post("/accounts/{account_id}/reset-password", response_model=TemporaryPasswordOut)
async def reset_password(
    account_id: IdPath, token: BearerToken, platform: PlatformDep
) -> TemporaryPasswordOut:
    """Issue a one-time temporary password (changed at next sign-in); ends its sessions."""
    temp = await _signed_in(platform, token, lambda s, p: s.reset_password(p, account_id))
    return TemporaryPasswordOut(temporary_password=temp)


@router.post("/accounts/{account_id}/unlock", status_code=status.HTTP_204_NO_CONTENT)
async def unlock(account_id: IdPath, token: BearerToken, platform: PlatformDep) -> Response:
    """Lift a sign-in lockout early."""
    await _signed_in(platform, token, lambda s, p: s.unlock(p, account_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- API keys ------------------------------------------------------------------------------
@router.post("/api-keys", response_model=ApiKeyCreatedOut, status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreateIn, token: BearerToken, platform: PlatformDep
) -> ApiKeyCreatedOut:
    """Create an integration key; its token is shown once."""

    async def work(service: AccountService, principal: Principal) -> ApiKeyCreatedOut:
        issued = await service.create_api_key(
            principal, name=body.name, roles=body.roles, ttl_days=body.ttl_days
        )
        return ApiKeyCreatedOut(key=_key_out(issued.key), token=issued.token)

    return await _signed_in(platform, token, work)


@router.get("/api-keys", response_model=list[ApiKeyOut])
async def list_api_keys(token: BearerToken, platform: PlatformDep) -> list[ApiKeyOut]:
    """Integration keys of the caller's organisation (never their secrets)."""

    async def work(service: AccountService, principal: Principal) -> list[ApiKeyOut]:
        return [_key_out(k) for k in await service.list_api_keys(principal)]

    return await _signed_in(platform, token, work)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: IdPath, token: BearerToken, platform: PlatformDep) -> Response:
    """Revoke an integration key at once."""
    await _signed_in(platform, token, lambda s, p: s.revoke_api_key(p, key_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
