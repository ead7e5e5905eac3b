"""Who may operate devices — one rule for every device-facing feature (commands, firmware, …).

Changing what devices do (sending commands, rolling out firmware) needs ``devices.manage`` and a
recent second factor (R17c); reading needs ``devices.read``, which ``devices.manage`` implies.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.platform import Platform


def require_device_manager(platform: Platform, session: AsyncSession, principal: Principal) -> None:
    """``devices.manage`` and a recent second factor, or Forbidden / second-factor required."""
    AccountService.require(principal, Cap.DEVICES_MANAGE)
    AccountService(platform, session).require_second_factor(principal)


def require_device_reader(principal: Principal) -> None:
    """``devices.read`` (or ``devices.manage``), or Forbidden."""
    if not principal.has(Cap.DEVICES_MANAGE):
        AccountService.require(principal, Cap.DEVICES_READ)
