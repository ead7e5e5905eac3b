"""Organisations, accounts, roles with separated duties, sessions, second factor, API keys."""

from anju.accounts.principal import Principal
from anju.accounts.roles import ROLES, Cap, Role
from anju.accounts.service import AccountService, run_boundary

__all__ = ["ROLES", "AccountService", "Cap", "Principal", "Role", "run_boundary"]
