"""Who may read or change an organisation's places and stays over HTTP: a capability to read
(or the one to manage), or the one to manage plus a recent second factor (R17c). Refusals are
audited with outcome ``denied``; the work runs inside the caller's organisation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.guard import org_of, run_access
from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.platform import Platform

T = TypeVar("T")
Work = Callable[[AsyncSession, str, Principal], Awaitable[T]]


async def as_reader(
    platform: Platform, token: str, read: Cap, manage: Cap, action: str, work: Work[T]
) -> T:
    """``work(session, org_id, principal)`` for a holder of ``read`` or ``manage``."""

    async def go(session: AsyncSession, principal: Principal) -> T:
        if not principal.has(manage):
            AccountService.require(principal, read)
        return await work(session, org_of(principal), principal)

    return await run_access(platform, token, action, go)


async def as_manager(
    platform: Platform,
    token: str,
    manage: Cap,
    action: str,
    work: Work[T],
    *,
    second_factor: bool = True,
) -> T:
    """``work(session, org_id, principal)`` for a holder of ``manage`` (with a recent second
    factor unless told otherwise)."""

    async def go(session: AsyncSession, principal: Principal) -> T:
        AccountService.require(principal, manage)
        if second_factor:
            AccountService(platform, session).require_second_factor(principal)
        return await work(session, org_of(principal), principal)

    return await run_access(platform, token, action, go)
