"""Queries for the accounts domain. Every account lookup is scoped by organisation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from anju.accounts.models import Account, ApiKey, LoginSession, Organisation, RoleAssignment
from anju.db import before_commit


@dataclass(frozen=True)
class RequestSession:
    """What authenticating one request needs of a login session, its account and roles."""

    session_id: str
    token_hash: bytes
    revoked_at: datetime | None
    last_seen_at: datetime
    idle_seconds: int
    expires_at: datetime
    second_factor_at: datetime | None
    account_id: str
    org_id: str | None
    account_status: str
    must_change_password: bool
    org_active: bool  # platform level, or an organisation that is not disabled
    roles: tuple[str, ...]  # sorted


# Built once (a statement built per request spent more CPU on its cache key than the SQL took).
_SESSION_FOR_REQUEST = (
    select(
        LoginSession.id.label("session_id"),
        LoginSession.token_hash,
        LoginSession.revoked_at,
        LoginSession.last_seen_at,
        LoginSession.idle_seconds,
        LoginSession.expires_at,
        LoginSession.second_factor_at,
        Account.id.label("account_id"),
        Account.org_id,
        Account.status.label("account_status"),
        Account.must_change_password,
        Organisation.id.is_not(None).label("org_found"),
        Organisation.disabled_at.label("org_disabled_at"),
        RoleAssignment.role,
    )
    .join(Account, Account.id == LoginSession.account_id)
    .outerjoin(Organisation, Organisation.id == Account.org_id)
    .outerjoin(RoleAssignment, RoleAssignment.account_id == Account.id)
    .where(LoginSession.token_hash == bindparam("token_hash"))
    .order_by(RoleAssignment.role)
)


def _same_org(column: InstrumentedAttribute[str | None], org_id: str | None) -> ColumnElement[bool]:
    # NULL means "platform level": it must match only NULL, never "any organisation".
    return column.is_(None) if org_id is None else column == org_id


class AccountsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- organisations ---------------------------------------------------------------------
    async def organisation_by_name(self, name: str) -> Organisation | None:
        result = await self.session.scalars(select(Organisation).where(Organisation.name == name))
        return result.first()

    async def organisation(self, org_id: str) -> Organisation | None:
        return await self.session.get(Organisation, org_id)

    async def organisations(self) -> Sequence[Organisation]:
        result = await self.session.scalars(select(Organisation).order_by(Organisation.name))
        return result.all()

    # --- accounts --------------------------------------------------------------------------
    async def account_by_login(self, login: str) -> Account | None:
        """Sign-in lookup (login names are unique platform-wide)."""
        result = await self.session.scalars(select(Account).where(Account.login == login))
        return result.first()

    async def account_in_org(self, account_id: str, org_id: str | None) -> Account | None:
        """The account if it belongs to ``org_id`` (None for any other organisation's)."""
        result = await self.session.scalars(
            select(Account).where(Account.id == account_id, _same_org(Account.org_id, org_id))
        )
        return result.first()

    async def account(self, account_id: str) -> Account | None:
        """Unscoped lookup: only for the principal's own account."""
        return await self.session.get(Account, account_id)

    async def accounts_in_org(self, org_id: str | None) -> Sequence[Account]:
        result = await self.session.scalars(
            select(Account).where(_same_org(Account.org_id, org_id)).order_by(Account.login)
        )
        return result.all()

    async def all_accounts(self) -> Sequence[Account]:
        result = await self.session.scalars(select(Account).order_by(Account.login))
        return result.all()

    # --- roles -----------------------------------------------------------------------------
    async def roles_of(self, account_id: str) -> list[str]:
        result = await self.session.scalars(
            select(RoleAssignment.role)
            .where(RoleAssignment.account_id == account_id)
            .order_by(RoleAssignment.role)
        )
        return list(result.all())

    async def role_assignment(self, account_id: str, role: str) -> RoleAssignment | None:
        result = await self.session.scalars(
            select(RoleAssignment).where(
                RoleAssignment.account_id == account_id, RoleAssignment.role == role
            )
        )
        return result.first()

    # --- sessions --------------------------------------------------------------------------
    async def session_for_request(self, token_hash: bytes) -> RequestSession | None:
        """A request's authentication in one statement: what :class:`RequestSession` holds of
        the session with ``token_hash``, its account, organisation and roles; None when no
        session has that hash. Columns, not entities: nothing enters the identity map."""
        rows = (await self.session.execute(_SESSION_FOR_REQUEST, {"token_hash": token_hash})).all()
        if not rows:
            return None
        first = rows[0]
        return RequestSession(
            session_id=first.session_id,
            token_hash=first.token_hash,
            revoked_at=first.revoked_at,
            last_seen_at=first.last_seen_at,
            idle_seconds=first.idle_seconds,
            expires_at=first.expires_at,
            second_factor_at=first.second_factor_at,
            account_id=first.account_id,
            org_id=first.org_id,
            account_status=first.account_status,
            must_change_password=first.must_change_password,
            org_active=first.org_id is None or (first.org_found and first.org_disabled_at is None),
            roles=tuple(row.role for row in rows if row.role is not None),
        )

    def touch_session_at_commit(self, session_id: str, now: datetime) -> None:
        """``last_seen_at = now`` with one plain UPDATE right before the commit. At the end,
        not now: concurrent requests of one session do not queue on its row lock."""

        async def touch(session: AsyncSession) -> None:
            await session.execute(
                update(LoginSession)
                .where(LoginSession.id == session_id)
                .values(last_seen_at=now)
                .execution_options(synchronize_session=False)
            )

        before_commit(self.session, f"anju.accounts.touch.{session_id}", touch)

    async def revoke_sessions(
        self, account_id: str, now: datetime, *, except_id: str | None = None
    ) -> None:
        stmt = (
            update(LoginSession)
            .where(LoginSession.account_id == account_id, LoginSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if except_id is not None:
            stmt = stmt.where(LoginSession.id != except_id)
        await self.session.execute(stmt)

    # --- API keys --------------------------------------------------------------------------
    async def api_key_by_prefix(self, prefix: str) -> ApiKey | None:
        result = await self.session.scalars(select(ApiKey).where(ApiKey.prefix == prefix))
        return result.first()

    async def api_key_in_org(self, key_id: str, org_id: str | None) -> ApiKey | None:
        result = await self.session.scalars(
            select(ApiKey).where(ApiKey.id == key_id, _same_org(ApiKey.org_id, org_id))
        )
        return result.first()

    async def api_keys_in_org(self, org_id: str | None) -> Sequence[ApiKey]:
        result = await self.session.scalars(
            select(ApiKey).where(_same_org(ApiKey.org_id, org_id)).order_by(ApiKey.created_at)
        )
        return result.all()
