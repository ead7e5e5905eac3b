"""Account rules: organisations, accounts, passwords, roles and API keys; the boundary helpers.

:class:`AccountService` is the one service the endpoints and the CLI use; sign-in, sessions
and the second factor come from :class:`~anju.accounts.signin.SignInService`, the shared
checks from :class:`~anju.accounts.base.ServiceBase`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.base import DEFAULT_PASSWORDS
from anju.accounts.models import Account, ApiKey, Organisation, RoleAssignment
from anju.accounts.passwords import Passwords, check_password_policy, temporary_password
from anju.accounts.principal import (
    API_KEY_PREFIX,
    LOGIN_PATTERN,
    IssuedApiKey,
    IssuedSession,
    PasswordCheck,
    Principal,
    normalise_login,
    token_hash,
    validate_login,
)
from anju.accounts.repository import AccountsRepository
from anju.accounts.roles import API_KEY_ROLES, Cap, Role, check_combination, parse_role
from anju.accounts.signin import SignInService, count_failure
from anju.db import run_with_failure_effects
from anju.errors import Conflict, Forbidden, InvalidInput, NotFound, WeakPassword
from anju.platform import Platform

T = TypeVar("T")
ORG_KINDS = ("hotel_group", "landlord_company", "property_operator", "rental_platform", "other")


class AccountService(SignInService):
    """Organisations, accounts, passwords, roles and API keys (plus everything inherited)."""

    # --- organisations and accounts --------------------------------------------------------
    async def create_organisation(self, name: str, kind: str, *, actor: str) -> Organisation:
        """A new tenant organisation (CLI / platform level)."""
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise InvalidInput("机构名称须为 1–200 个字符 / organisation name must be 1–200 chars")
        if kind not in ORG_KINDS:
            raise InvalidInput(
                f"未知机构类型 / unknown organisation kind {kind!r}",
                details={"known_kinds": list(ORG_KINDS)},
            )
        if await self.repo.organisation_by_name(name) is not None:
            raise Conflict("机构已存在 / organisation already exists")
        org = Organisation(name=name, kind=kind, created_at=self.clock.now())
        self.session.add(org)
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="accounts.organisation.created",
            actor=actor,
            org_id=org.id,
            target=f"organisation:{org.id}",
            details={"kind": kind},
        )
        return org

    async def _new_account(
        self,
        *,
        org_id: str | None,
        login: str,
        display_name: str,
        password: str,
        must_change: bool,
        actor: str,
    ) -> Account:
        login = validate_login(login)
        display_name = display_name.strip()
        if not 1 <= len(display_name) <= 100:
            raise InvalidInput("显示名须为 1–100 个字符 / display name must be 1–100 characters")
        check_password_policy(password, login=login, min_length=self.settings.password_min_length)
        if await self.repo.account_by_login(login) is not None:
            raise Conflict("登录名不可用 / this login name is not available")
        now = self.clock.now()
        account = Account(
            org_id=org_id,
            login=login,
            display_name=display_name,
            password_hash=await self.passwords.hash(password),
            must_change_password=must_change,
            status="active",
            failed_logins=0,
            created_at=now,
            password_changed_at=now,
        )
        self.session.add(account)
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="accounts.account.created",
            actor=actor,
            org_id=org_id,
            target=f"account:{account.id}",
            details={"login": login},
        )
        return account

    async def bootstrap_security_admin(
        self, *, login: str, password: str, org_name: str | None, org_kind: str = "other"
    ) -> tuple[Account, str]:
        """First security administrator (CLI, actor "cli"); returns it and its TOTP URI."""
        org_id: str | None = None
        if org_name is not None:
            org = await self.repo.organisation_by_name(org_name.strip())
            if org is None:
                org = await self.create_organisation(org_name, org_kind, actor="cli")
            org_id = org.id
        account = await self._new_account(
            org_id=org_id,
            login=login,
            display_name=login,
            password=password,
            must_change=False,
            actor="cli",
        )
        await self._add_role(account, Role.SECURITY_ADMIN, actor="cli")
        uri = await self._start_totp_enrolment(account)
        return account, uri

    async def create_account(
        self, principal: Principal, *, login: str, display_name: str
    ) -> tuple[Account, str]:
        """A new account in the caller's organisation with a one-time temporary password."""
        self.require(principal, Cap.ACCOUNTS_MANAGE)
        self.require_second_factor(principal)
        temp = temporary_password(max(20, self.settings.password_min_length))
        account = await self._new_account(
            org_id=principal.org_id,
            login=login,
            display_name=display_name,
            password=temp,
            must_change=True,
            actor=principal.actor,
        )
        return account, temp

    async def account_for(self, principal: Principal, account_id: str) -> Account:
        """An account of the caller's organisation; 404 for any other (existence not leaked)."""
        self.require(principal, Cap.ACCOUNTS_READ)
        return await self._account_in_scope(principal, account_id)

    # --- passwords -------------------------------------------------------------------------
    async def change_password(self, principal: Principal, current: str, new: str) -> None:
        """Change one's own password (the current one is required); other sessions end."""
        account = await self.own_account(principal)
        if not await self.passwords.verify(account.password_hash, current):
            self.after_rollback(count_failure(account.id, "wrong_current_password"))
            raise Forbidden("当前密码错误 / the current password is wrong")
        check_password_policy(
            new, login=account.login, min_length=self.settings.password_min_length
        )
        if new == current:
            raise WeakPassword(
                "新密码不能与当前密码相同 / the new password must differ from the current one",
                details={"reasons": [{"code": "same_as_current", "message": "same as current"}]},
            )
        now = self.clock.now()
        account.password_hash = await self.passwords.hash(new)
        account.password_changed_at = now
        account.must_change_password = False
        await self.repo.revoke_sessions(account.id, now, except_id=principal.session_id)
        await self.audit.record(
            self.session,
            action="accounts.password.changed",
            actor=principal.actor,
            org_id=principal.org_id,
            target=principal.actor,
        )

    async def reset_password(self, principal: Principal, account_id: str) -> str:
        """A one-time temporary password for another account, to be changed at next sign-in."""
        self.require(principal, Cap.ACCOUNTS_MANAGE)
        self.require_second_factor(principal)
        account = await self._account_in_scope(principal, account_id)
        if account.id == principal.id:
            raise self._deny(
                Forbidden("请通过修改密码更换自己的密码 / use the password change for yourself"),
                principal,
                action="accounts.password.reset",
                target=f"account:{account.id}",
            )
        temp = temporary_password(max(20, self.settings.password_min_length))
        now = self.clock.now()
        account.password_hash = await self.passwords.hash(temp)
        account.password_changed_at = now
        account.must_change_password = True
        account.failed_logins = 0
        account.locked_until = None
        await self.repo.revoke_sessions(account.id, now)
        await self.audit.record(
            self.session,
            action="accounts.password.reset",
            actor=principal.actor,
            org_id=principal.org_id,
            target=f"account:{account.id}",
        )
        return temp

    async def unlock(self, principal: Principal, account_id: str) -> None:
        """Lift a sign-in lockout early."""
        self.require(principal, Cap.ACCOUNTS_MANAGE)
        account = await self._account_in_scope(principal, account_id)
        account.failed_logins = 0
        account.locked_until = None
        await self.audit.record(
            self.session,
            action="accounts.account.unlocked",
            actor=principal.actor,
            org_id=principal.org_id,
            target=f"account:{account.id}",
        )

    # --- roles -----------------------------------------------------------------------------
    async def _add_role(self, account: Account, role: Role, *, actor: str) -> None:
        held = {Role(r) for r in await self.repo.roles_of(account.id)}
        if role in held:
            return
        check_combination(held | {role})
        self.session.add(
            RoleAssignment(
                account_id=account.id,
                role=role.value,
                org_id=account.org_id,
                granted_by=actor,
                granted_at=self.clock.now(),
            )
        )
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="accounts.role.granted",
            actor=actor,
            org_id=account.org_id,
            target=f"account:{account.id}",
            details={"role": role.value},
        )

    async def grant_role(self, principal: Principal, account_id: str, role_name: str) -> list[str]:
        """Grant a role to another account of the caller's organisation; returns its roles."""
        role = parse_role(role_name)
        self.require(principal, Cap.ROLES_GRANT)
        self.require_second_factor(principal)
        account = await self._account_in_scope(principal, account_id)
        target = f"account:{account.id}"
        if account.id == principal.id:
            raise self._deny(
                Forbidden("不能给自己授予角色 / nobody grants roles to themselves"),
                principal,
                action="accounts.role.granted",
                target=target,
                details={"role": role.value},
            )
        try:
            await self._add_role(account, role, actor=principal.actor)
        except Forbidden as exc:
            raise self._deny(
                exc,
                principal,
                action="accounts.role.granted",
                target=target,
                details={"role": role.value},
            ) from None
        return await self.repo.roles_of(account.id)

    async def revoke_role(self, principal: Principal, account_id: str, role_name: str) -> list[str]:
        """Take a role away from another account of the caller's organisation."""
        role = parse_role(role_name)
        self.require(principal, Cap.ROLES_GRANT)
        self.require_second_factor(principal)
        account = await self._account_in_scope(principal, account_id)
        if account.id == principal.id:
            raise self._deny(
                Forbidden("不能撤销自己的角色 / nobody revokes their own roles"),
                principal,
                action="accounts.role.revoked",
                target=f"account:{account.id}",
                details={"role": role.value},
            )
        assignment = await self.repo.role_assignment(account.id, role.value)
        if assignment is None:
            raise NotFound("该账号没有此角色 / the account does not hold this role")
        await self.session.delete(assignment)
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="accounts.role.revoked",
            actor=principal.actor,
            org_id=principal.org_id,
            target=f"account:{account.id}",
            details={"role": role.value},
        )
        return await self.repo.roles_of(account.id)

    # --- API keys --------------------------------------------------------------------------
    async def create_api_key(
        self, principal: Principal, *, name: str, roles: Iterable[str], ttl_days: int | None
    ) -> IssuedApiKey:
        """A new integration key for the caller's organisation (secret shown once)."""
        self.require(principal, Cap.APIKEYS_MANAGE)
        self.require_second_factor(principal)
        scopes = frozenset(parse_role(r) for r in roles)
        if not scopes:
            raise InvalidInput("API 密钥至少需要一个角色 / an API key needs at least one role")
        not_allowed = scopes - API_KEY_ROLES
        if not_allowed:
            raise self._deny(
                Forbidden(
                    "API 密钥不能持有管理角色 / API keys cannot hold administrative roles",
                    details={"roles": sorted(r.value for r in not_allowed)},
                ),
                principal,
                action="accounts.apikey.created",
                target=None,
            )
        check_combination(scopes)
        limit = self.settings.api_key_ttl_days
        days = limit if ttl_days is None else min(ttl_days, limit)
        if days < 1:
            raise InvalidInput("有效期至少一天 / the validity must be at least one day")
        now = self.clock.now()
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            org_id=principal.org_id,
            name=name.strip(),
            prefix=prefix,
            secret_hash=token_hash(secret),
            roles=" ".join(sorted(r.value for r in scopes)),
            created_by=principal.actor,
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        self.session.add(key)
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="accounts.apikey.created",
            actor=principal.actor,
            org_id=principal.org_id,
            target=f"apikey:{key.id}",
            details={"prefix": prefix, "roles": key.roles, "days": days},
        )
        return IssuedApiKey(token=f"{API_KEY_PREFIX}{prefix}_{secret}", key=key)

    async def list_api_keys(self, principal: Principal) -> list[ApiKey]:
        self.require(principal, Cap.APIKEYS_MANAGE)
        return list(await self.repo.api_keys_in_org(principal.org_id))

    async def revoke_api_key(self, principal: Principal, key_id: str) -> None:
        """Revoke a key of the caller's organisation at once."""
        self.require(principal, Cap.APIKEYS_MANAGE)
        key = await self.repo.api_key_in_org(key_id, principal.org_id)
        if key is None:
            raise NotFound("API 密钥不存在 / no such API key")
        if key.revoked_at is None:
            key.revoked_at = self.clock.now()
        await self.audit.record(
            self.session,
            action="accounts.apikey.revoked",
            actor=principal.actor,
            org_id=principal.org_id,
            target=f"apikey:{key.id}",
        )


async def sign_in(
    platform: Platform,
    login: str,
    password: str,
    totp_code: str | None = None,
    *,
    passwords: Passwords | None = None,
) -> IssuedSession:
    """Check credentials (and optionally a TOTP code) and open a session.

    The ~0.15 s argon2id verification runs between two short transactions, never inside one:
    on SQLite a transaction holds the single write lock, and a login must not stall every
    other writer (nor serialise concurrent logins).
    """
    hasher = passwords or DEFAULT_PASSWORDS
    folded = normalise_login(login)
    account_id: str | None = None
    stored: str | None = None
    if LOGIN_PATTERN.match(folded):
        async with platform.db.transaction() as session:
            account = await AccountsRepository(session).account_by_login(folded)
            if account is not None:
                account_id, stored = account.id, account.password_hash
    if stored is None:
        await hasher.burn_time(password)  # unknown names cost the same as known ones
        matched = False
    else:
        matched = await hasher.verify(stored, password)
    rehashed = None
    if matched and stored is not None and hasher.needs_rehash(stored):
        rehashed = await hasher.hash(password)
    checked = PasswordCheck(account_id, stored, matched, rehashed)
    return await run_boundary(
        platform,
        lambda service: service.complete_login(checked, password, totp_code),
        passwords=passwords,
    )


async def run_boundary(
    platform: Platform,
    work: Callable[[AccountService], Awaitable[T]],
    *,
    passwords: Passwords | None = None,
) -> T:
    """Run ``work`` in one transaction; failure effects survive a refusal (see anju.db)."""

    def open_service(session: AsyncSession) -> AccountService:
        return AccountService(platform, session, passwords)

    return await run_with_failure_effects(
        platform.db, open_service, work, AccountService.pending_effects, open_service
    )
