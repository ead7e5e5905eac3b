"""Who may use the biometrics API: a capability check whose refusals are audited."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.audit import AuditLog
from anju.errors import Forbidden
from anju.platform import Platform


@contextlib.asynccontextmanager
async def authorised(
    platform: Platform, token: str, capability: Cap, action: str
) -> AsyncIterator[tuple[AsyncSession, Principal]]:
    """A transaction of the principal behind ``token`` if it holds ``capability``; anyone else
    gets 403 and an audit entry ``action`` with outcome ``denied`` (committed)."""
    async with platform.db.transaction() as session:
        principal = await AccountService(platform, session).authenticate(token)
        if principal.has(capability):
            yield session, principal
            return
    async with platform.db.transaction() as session:
        await AuditLog(platform).record(
            session,
            action=action,
            actor=principal.actor,
            org_id=principal.org_id,
            outcome="denied",
            details={"capability": capability.value},
        )
    raise Forbidden(
        f"无权执行此操作 / missing capability {capability.value}",
        details={"capability": capability.value},
    )
