"""Who may use access control: ``access.manage`` (+ a recent second factor for every change,
R17c) or ``access.read``; refusals are audited. Everything is scoped to the caller's
organisation: another organisation's grants, credentials and freezes are "not found"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.audit import AuditLog
from anju.errors import AnjuError, Forbidden, SecondFactorRequired
from anju.platform import Platform

T = TypeVar("T")


def org_of(principal: Principal) -> str:
    """The caller's organisation (access control always acts inside one)."""
    if principal.org_id is None:
        raise Forbidden("门禁授权属于某个机构 / access control acts inside an organisation")
    return principal.org_id


def require_manager(platform: Platform, session: AsyncSession, principal: Principal) -> str:
    """``access.manage`` and a recent second factor; the caller's organisation."""
    AccountService.require(principal, Cap.ACCESS_MANAGE)
    AccountService(platform, session).require_second_factor(principal)
    return org_of(principal)


def require_reader(principal: Principal) -> str:
    """``access.read`` (or ``access.manage``); the caller's organisation."""
    if not principal.has(Cap.ACCESS_MANAGE):
        AccountService.require(principal, Cap.ACCESS_READ)
    return org_of(principal)


async def run_access(
    platform: Platform,
    token: str,
    action: str,
    work: Callable[[AsyncSession, Principal], Awaitable[T]],
) -> T:
    """Run ``work`` as the holder of ``token`` in one transaction; a refusal (capability or
    second factor) rolls it back and is audited as ``action`` with outcome ``denied``."""
    principal: Principal | None = None
    try:
        async with platform.db.transaction() as session:
            principal = await AccountService(platform, session).authenticate(token)
            return await work(session, principal)
    except (Forbidden, SecondFactorRequired) as refused:
        if principal is not None:
            await _audit_denied(platform, principal, action, refused)
        raise


async def _audit_denied(
    platform: Platform, principal: Principal, action: str, refused: AnjuError
) -> None:
    async with platform.db.transaction() as session:
        await AuditLog(platform).record(
            session,
            action=action,
            actor=principal.actor,
            org_id=principal.org_id,
            outcome="denied",
            details={"reason": refused.code},
        )
