"""FastAPI dependencies: who is calling, and may they do this.

Other domains write ``principal: Annotated[Principal, Depends(require(Cap.PI_READ))]`` and, for
sensitive operations, ``Depends(require_second_factor)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.api.deps import DbSession, PlatformDep
from anju.errors import Unauthenticated


async def bearer_token(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>`` (no database access)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("需要登录 / sign in first (Authorization: Bearer <token>)")
    return token


BearerToken = Annotated[str, Depends(bearer_token)]


async def current_principal(
    token: BearerToken, platform: PlatformDep, session: DbSession
) -> Principal:
    """The signed-in account or API key behind the request (in the request's transaction)."""
    return await AccountService(platform, session).authenticate(token)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(capability: Cap) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that yields the principal if it holds ``capability``, else 403."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        AccountService.require(principal, capability)
        return principal

    return dependency


async def require_second_factor(
    principal: CurrentPrincipal, platform: PlatformDep, session: DbSession
) -> Principal:
    """The principal if its session verified a second factor recently, else 403."""
    AccountService(platform, session).require_second_factor(principal)
    return principal
