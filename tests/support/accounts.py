"""Test helpers that make accounts the way the CLI and the first sign-in do."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from anju.accounts import totp
from anju.accounts.service import AccountService, run_boundary, sign_in
from anju.kit.clock import FixedClock
from anju.platform import Platform

PASSWORD = "Correct-Horse-42"


@dataclass
class Admin:
    id: str
    org_id: str | None
    login: str
    secret: str
    token: str = ""  # the first sign-in's session (second factor verified by the enrolment)


async def make_admin(platform: Platform, login: str = "sa-one", org: str | None = "Org A") -> Admin:
    """A security administrator with a confirmed TOTP factor (as the CLI + first login do)."""
    async with platform.db.transaction() as s:
        account, uri = await AccountService(platform, s).bootstrap_security_admin(
            login=login, password=PASSWORD, org_name=org
        )
        admin_id, org_id = account.id, account.org_id
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    token = await login_token(platform, login)
    await as_principal(
        platform,
        token,
        lambda s, p: s.confirm_totp(p, totp.code_at(secret, platform.clock.now())),
    )
    return Admin(admin_id, org_id, login, secret, token)


async def login_token(
    platform: Platform, login: str, password: str = PASSWORD, code: str | None = None
) -> str:
    issued = await sign_in(platform, login, password, code)
    return issued.token


async def as_principal(platform, token, work, allow_password_change: bool = False):  # type: ignore[no-untyped-def]
    async def go(service: AccountService):  # type: ignore[no-untyped-def]
        principal = await service.authenticate(token, allow_password_change=allow_password_change)
        return await work(service, principal)

    return await run_boundary(platform, go)


async def step_up(platform: Platform, clock: FixedClock, admin: Admin, token: str) -> None:
    clock.advance(seconds=totp.STEP_SECONDS)  # a fresh step: the previous code was used
    code = totp.code_at(admin.secret, clock.now())
    await as_principal(platform, token, lambda s, p: s.step_up(p, code))


async def make_member(
    platform: Platform, clock: FixedClock, admin: Admin, token: str, login: str
) -> tuple[str, str]:
    """A new account created by ``admin`` with its temporary password changed to PASSWORD."""
    await step_up(platform, clock, admin, token)
    account, temp = await as_principal(
        platform, token, lambda s, p: s.create_account(p, login=login, display_name=login)
    )
    member_token = await login_token(platform, login, temp)
    await as_principal(
        platform,
        member_token,
        lambda s, p: s.change_password(p, temp, PASSWORD),
        allow_password_change=True,
    )
    return account.id, member_token


async def make_member_with_role(
    platform: Platform, clock: FixedClock, admin: Admin, token: str, login: str, role: str
) -> str:
    """A new account of ``admin``'s organisation holding ``role``; its session token."""
    account_id, member_token = await make_member(platform, clock, admin, token, login)
    await step_up(platform, clock, admin, token)
    await as_principal(platform, token, lambda s, p: s.grant_role(p, account_id, role))
    return member_token
