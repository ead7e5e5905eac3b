"""What every account service shares: its session, permission checks and failure effects.

Errors that must leave a trace even though the request fails (a wrong password raises the
failure counter; a refused role grant is an audit event) are registered with
:meth:`ServiceBase.after_rollback`; :func:`anju.accounts.service.run_boundary` commits them in
a second transaction after the failed one rolled back, then re-raises.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.models import Account
from anju.accounts.passwords import Passwords
from anju.accounts.principal import Principal
from anju.accounts.repository import AccountsRepository
from anju.accounts.roles import Cap
from anju.audit import AuditLog
from anju.errors import AnjuError, Forbidden, NotFound, SecondFactorRequired, Unauthenticated
from anju.platform import Platform

if TYPE_CHECKING:
    from anju.accounts.service import AccountService

Effect = Callable[["AccountService"], Awaitable[None]]


@dataclass
class _Pending:
    effects: list[Effect] = field(default_factory=list)


DEFAULT_PASSWORDS = Passwords()


class ServiceBase:
    """The transaction, repository, audit log and checks every account service works with."""

    def __init__(
        self, platform: Platform, session: AsyncSession, passwords: Passwords | None = None
    ) -> None:
        self.platform = platform
        self.session = session
        self.settings = platform.settings
        self.clock = platform.clock
        self.repo = AccountsRepository(session)
        self.audit = AuditLog(platform)
        self.passwords = passwords or DEFAULT_PASSWORDS
        self._pending = _Pending()

    # --- failure effects -------------------------------------------------------------------
    def after_rollback(self, effect: Effect) -> None:
        """Run ``effect`` in a new transaction if this one fails (see module docstring)."""
        self._pending.effects.append(effect)

    def pending_effects(self) -> list[Effect]:
        return list(self._pending.effects)

    def _deny(
        self,
        error: AnjuError,
        principal: Principal,
        *,
        action: str,
        target: str | None,
        details: dict[str, str | int | bool | None] | None = None,
    ) -> AnjuError:
        """Record a refused operation as a ``denied`` audit entry; return the error to raise."""

        async def record(svc: AccountService) -> None:
            await svc.audit.record(
                svc.session,
                action=action,
                actor=principal.actor,
                org_id=principal.org_id,
                target=target,
                outcome="denied",
                details={"reason": error.code, **(details or {})},
            )

        self.after_rollback(record)
        return error

    async def _account_in_scope(self, principal: Principal, account_id: str) -> Account:
        account = await self.repo.account_in_org(account_id, principal.org_id)
        if account is None:
            raise NotFound("账号不存在 / no such account")
        return account

    async def list_accounts(self, principal: Principal) -> list[tuple[Account, list[str]]]:
        """Accounts of the caller's organisation with their roles."""
        self.require(principal, Cap.ACCOUNTS_READ)
        accounts = await self.repo.accounts_in_org(principal.org_id)
        return [(a, await self.repo.roles_of(a.id)) for a in accounts]

    async def roles_of(self, account_id: str) -> list[str]:
        return await self.repo.roles_of(account_id)

    async def own_account(self, principal: Principal) -> Account:
        if principal.kind != "account":
            raise Forbidden("仅限账号登录使用 / only for signed-in accounts, not API keys")
        account = await self.repo.account(principal.id)
        if account is None:
            raise Unauthenticated("账号不存在 / account no longer exists")
        return account

    # --- permission checks -----------------------------------------------------------------
    @staticmethod
    def require(principal: Principal, capability: Cap) -> None:
        """Refuse unless ``principal`` holds ``capability``."""
        if not principal.has(capability):
            raise Forbidden(
                f"无权执行此操作 / missing capability {capability.value}",
                details={"capability": capability.value},
            )

    def require_second_factor(self, principal: Principal) -> None:
        """Refuse unless the caller verified a second factor within the configured window."""
        verified = principal.second_factor_at
        window = timedelta(seconds=self.settings.second_factor_window_seconds)
        if verified is None or self.clock.now() - verified > window:
            raise SecondFactorRequired(
                "此操作需要先验证第二因素 / this operation needs a recent second-factor check",
                details={"window_seconds": self.settings.second_factor_window_seconds},
            )
