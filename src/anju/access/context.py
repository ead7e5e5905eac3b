"""What every access service holds for one transaction: repository, audit log, command outbox."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.repository import AccessRepository
from anju.audit import AuditLog, NewEntry
from anju.devices.commands import CommandService
from anju.platform import Platform

Details = dict[str, str | int | bool | None]
SYSTEM = "system"


class AccessContext:
    """Access work of one transaction (the caller commits; services only flush)."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self.platform = platform
        self.session = session
        self.clock = platform.clock
        self.repo = AccessRepository(session)
        self.audit = AuditLog(platform)
        self.commands = CommandService(platform, session)

    def now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    async def record(
        self,
        action: str,
        *,
        actor: str,
        org_id: str,
        target: str,
        details: Details,
        outcome: str = "success",
    ) -> None:
        """One audit entry (details never carry a secret or PI), appended with the
        transaction's others just before it commits."""
        await self.audit.record_at_commit(
            self.session, [NewEntry(action, actor, org_id, target, outcome, details)]
        )
