"""Sign-in rules: password check outcome, lockout, sessions, API-key authentication, TOTP."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from anju.accounts import totp
from anju.accounts.base import ServiceBase
from anju.accounts.models import Account, LoginSession
from anju.accounts.principal import (
    API_KEY_PREFIX,
    MAX_TOKEN_LENGTH,
    IssuedSession,
    PasswordChangeRequired,
    PasswordCheck,
    Principal,
    SecondFactorInvalid,
    bad_credentials,
    token_hash,
)
from anju.accounts.roles import Role, capabilities_of
from anju.errors import AccountLocked, Conflict, Forbidden, Unauthenticated

if TYPE_CHECKING:
    from anju.accounts.service import AccountService

# The idle clock moves at most once a minute per session: a request within a minute of the
# last recorded one writes nothing (an idle timeout of N minutes then ends the session between
# N − 1 and N minutes after the last request — never later).
IDLE_CLOCK_STEP = timedelta(seconds=60)


class SignInService(ServiceBase):
    # --- sign-in ---------------------------------------------------------------------------
    async def complete_login(
        self, checked: PasswordCheck, password: str, totp_code: str | None
    ) -> IssuedSession:
        """Second half of :func:`sign_in`: apply a password check made outside any transaction."""
        now = self.clock.now()
        account = None
        if checked.account_id is not None:
            account = await self.repo.account(checked.account_id)
        if account is None:
            self._audit_failure_later(None, None, "unknown_login")
            raise bad_credentials()
        if account.locked_until is not None and account.locked_until > now:
            self._audit_failure_later(account.id, account.org_id, "locked", "denied")
            raise self._locked_error(account.locked_until)
        if not checked.matched:
            self.after_rollback(count_failure(account.id, "wrong_password"))
            raise bad_credentials()
        if account.password_hash != checked.checked_hash:
            # Changed between the check and now: the check is void (not counted as a failure).
            self._audit_failure_later(account.id, account.org_id, "password_changed_meanwhile")
            raise bad_credentials()
        if account.status != "active" or not await self._org_active(account.org_id):
            self._audit_failure_later(account.id, account.org_id, "disabled")
            raise bad_credentials()
        second_factor_at: datetime | None = None
        if totp_code is not None:
            if not account.has_totp:
                raise Forbidden("尚未设置第二因素 / no second factor is enrolled yet")
            if not self._accept_totp(account, totp_code):
                self.after_rollback(count_failure(account.id, "wrong_second_factor"))
                raise bad_credentials()
            second_factor_at = now
        account.failed_logins = 0
        account.locked_until = None
        if checked.rehashed is not None:
            account.password_hash = checked.rehashed
        issued = await self._open_session(account, second_factor_at)
        await self.audit.record(
            self.session,
            action="accounts.login.succeeded",
            actor=f"account:{account.id}",
            org_id=account.org_id,
            target=f"account:{account.id}",
            details={"second_factor": second_factor_at is not None},
        )
        return issued

    def _locked_error(self, until: datetime) -> AccountLocked:
        retry = max(1, int((until - self.clock.now()).total_seconds()))
        return AccountLocked(
            "账号因多次登录失败已被临时锁定 / the account is temporarily locked after repeated "
            "failed sign-ins",
            details={"retry_after_seconds": retry},
        )

    async def _org_active(self, org_id: str | None) -> bool:
        if org_id is None:
            return True
        org = await self.repo.organisation(org_id)
        return org is not None and org.disabled_at is None

    def _audit_failure_later(
        self, account_id: str | None, org_id: str | None, reason: str, outcome: str = "failure"
    ) -> None:
        async def record(svc: AccountService) -> None:
            await svc.audit.record(
                svc.session,
                action="accounts.login.failed",
                actor="anonymous",
                org_id=org_id,
                target=None if account_id is None else f"account:{account_id}",
                outcome=outcome,
                details={"reason": reason},
            )

        self.after_rollback(record)

    async def record_login_failure(self, account_id: str, reason: str) -> None:
        """Count a failed sign-in or code; lock the account after the configured number."""
        account = (
            await self.session.scalars(
                select(Account).where(Account.id == account_id).with_for_update()
            )
        ).first()
        if account is None:
            return
        account.failed_logins += 1
        details: dict[str, str | int | bool | None] = {
            "reason": reason,
            "consecutive_failures": account.failed_logins,
        }
        await self.audit.record(
            self.session,
            action="accounts.login.failed",
            actor="anonymous",
            org_id=account.org_id,
            target=f"account:{account.id}",
            outcome="failure",
            details=details,
        )
        if account.failed_logins >= self.settings.login_max_failures:
            account.locked_until = self.clock.now() + timedelta(
                seconds=self.settings.login_lockout_seconds
            )
            account.failed_logins = 0
            await self.audit.record(
                self.session,
                action="accounts.login.locked_out",
                actor="system",
                org_id=account.org_id,
                target=f"account:{account.id}",
                outcome="success",
                details={"lockout_seconds": self.settings.login_lockout_seconds},
            )
        await self.session.flush()

    async def _open_session(
        self, account: Account, second_factor_at: datetime | None
    ) -> IssuedSession:
        now = self.clock.now()
        token = secrets.token_hex(32)  # hex: never collides with the anju_ API key form
        row = LoginSession(
            account_id=account.id,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.session_ttl_seconds),
            last_seen_at=now,
            idle_seconds=self.settings.session_idle_seconds,
            second_factor_at=second_factor_at,
        )
        self.session.add(row)
        await self.session.flush()
        return IssuedSession(
            token=token,
            session_id=row.id,
            account_id=account.id,
            expires_at=row.expires_at,
            second_factor_verified=second_factor_at is not None,
            must_change_password=account.must_change_password,
        )

    async def authenticate(self, token: str, *, allow_password_change: bool = False) -> Principal:
        """The principal behind a bearer token (session or API key), or ``Unauthenticated``."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("无效的凭据 / invalid credentials")
        if token.startswith(API_KEY_PREFIX):
            return await self._authenticate_api_key(token)
        now = self.clock.now()
        presented = token_hash(token)
        # One statement: the session, its account, the organisation and the roles.
        found = await self.repo.session_for_request(presented)
        if found is None or not hmac.compare_digest(found.token_hash, presented):
            raise Unauthenticated("无效的凭据 / invalid credentials")
        if found.revoked_at is not None:
            raise Unauthenticated("会话已注销 / the session was signed out")
        idle_deadline = found.last_seen_at + timedelta(seconds=found.idle_seconds)
        if now >= found.expires_at or now >= idle_deadline:
            raise Unauthenticated("会话已过期，请重新登录 / the session expired; sign in again")
        if found.account_status != "active" or not found.org_active:
            raise Unauthenticated("账号不可用 / the account is not active")
        if found.must_change_password and not allow_password_change:
            raise PasswordChangeRequired(
                "请先修改临时密码 / change the temporary password first (POST /api/v1/me/password)"
            )
        if now - found.last_seen_at >= IDLE_CLOCK_STEP:
            self.repo.touch_session_at_commit(found.session_id, now)
        roles = frozenset(Role(r) for r in found.roles)
        return Principal(
            kind="account",
            id=found.account_id,
            org_id=found.org_id,
            roles=roles,
            capabilities=capabilities_of(roles),
            session_id=found.session_id,
            second_factor_at=found.second_factor_at,
            must_change_password=found.must_change_password,
        )

    async def _authenticate_api_key(self, token: str) -> Principal:
        parts = token.split("_", 2)
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise Unauthenticated("无效的凭据 / invalid credentials")
        key = await self.repo.api_key_by_prefix(parts[1])
        # Hash even when the prefix is unknown so both paths cost the same.
        presented = token_hash(parts[2])
        stored = key.secret_hash if key is not None else bytes(len(presented))
        if key is None or not hmac.compare_digest(stored, presented):
            raise Unauthenticated("无效的凭据 / invalid credentials")
        now = self.clock.now()
        if key.revoked_at is not None:
            raise Unauthenticated("API 密钥已吊销 / the API key was revoked")
        if now >= key.expires_at:
            raise Unauthenticated("API 密钥已过期 / the API key expired")
        if not await self._org_active(key.org_id):
            raise Unauthenticated("机构已停用 / the organisation is disabled")
        key.last_used_at = now
        roles = frozenset(Role(r) for r in key.roles.split())
        return Principal(
            kind="apikey",
            id=key.id,
            org_id=key.org_id,
            roles=roles,
            capabilities=capabilities_of(roles),
        )

    async def logout(self, principal: Principal) -> None:
        """Revoke the caller's session."""
        if principal.session_id is None:
            raise Forbidden("API 密钥无会话可注销 / API keys have no session to sign out")
        row = await self.session.get(LoginSession, principal.session_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = self.clock.now()
        await self.audit.record(
            self.session,
            action="accounts.logout",
            actor=principal.actor,
            org_id=principal.org_id,
            target=principal.actor,
        )

    # --- second factor ---------------------------------------------------------------------
    def _accept_totp(self, account: Account, code: str) -> bool:
        if account.totp_secret_sealed is None:
            return False
        secret = totp.open_secret(
            self.platform.keys, account.totp_secret_sealed, account_id=account.id, slot="active"
        )
        match = totp.match_code(
            secret, code, now=self.clock.now(), last_step=account.totp_last_step
        )
        if match is None:
            return False
        account.totp_last_step = match.step
        return True

    async def step_up(self, principal: Principal, code: str) -> datetime:
        """Verify a TOTP code for the caller's session; sensitive operations open for a window."""
        account = await self.own_account(principal)
        now = self.clock.now()
        if not account.has_totp:
            raise Forbidden("尚未设置第二因素 / no second factor is enrolled yet")
        if account.locked_until is not None and account.locked_until > now:
            raise self._locked_error(account.locked_until)
        if not self._accept_totp(account, code):
            self.after_rollback(count_failure(account.id, "wrong_second_factor"))
            raise SecondFactorInvalid("第二因素验证码错误 / wrong or already used code")
        assert principal.session_id is not None  # own_account() refused API keys
        row = await self.session.get(LoginSession, principal.session_id)
        if row is not None:
            row.second_factor_at = now
        account.failed_logins = 0
        await self.audit.record(
            self.session,
            action="accounts.second_factor.verified",
            actor=principal.actor,
            org_id=principal.org_id,
            target=principal.actor,
        )
        return now + timedelta(seconds=self.settings.second_factor_window_seconds)

    async def _start_totp_enrolment(self, account: Account) -> str:
        secret = totp.new_secret()
        account.totp_pending_sealed = totp.seal_secret(
            self.platform.keys, secret, account_id=account.id, slot="pending"
        )
        await self.audit.record(
            self.session,
            action="accounts.totp.enrolment_started",
            actor=f"account:{account.id}",
            org_id=account.org_id,
            target=f"account:{account.id}",
        )
        return totp.provisioning_uri(secret, login=account.login)

    async def enrol_totp(self, principal: Principal) -> str:
        """Start (re-)enrolment; replacing an active factor needs a fresh step-up first."""
        account = await self.own_account(principal)
        if account.has_totp:
            self.require_second_factor(principal)
        return await self._start_totp_enrolment(account)

    async def confirm_totp(self, principal: Principal, code: str) -> None:
        """Activate the pending secret with its first valid code."""
        account = await self.own_account(principal)
        if account.totp_pending_sealed is None:
            raise Conflict("没有待确认的第二因素 / no second-factor enrolment is pending")
        secret = totp.open_secret(
            self.platform.keys, account.totp_pending_sealed, account_id=account.id, slot="pending"
        )
        match = totp.match_code(secret, code, now=self.clock.now(), last_step=None)
        if match is None:
            raise SecondFactorInvalid("第二因素验证码错误 / wrong code")
        now = self.clock.now()
        account.totp_secret_sealed = totp.seal_secret(
            self.platform.keys, secret, account_id=account.id, slot="active"
        )
        account.totp_pending_sealed = None
        account.totp_last_step = match.step
        account.totp_enabled_at = now
        if principal.session_id is not None:
            row = await self.session.get(LoginSession, principal.session_id)
            if row is not None:
                row.second_factor_at = now
        await self.audit.record(
            self.session,
            action="accounts.totp.enabled",
            actor=principal.actor,
            org_id=principal.org_id,
            target=principal.actor,
        )


def count_failure(account_id: str, reason: str) -> Callable[[AccountService], Awaitable[None]]:
    async def effect(svc: AccountService) -> None:
        await svc.record_login_failure(account_id, reason)

    return effect
