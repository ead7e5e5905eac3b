"""Database: SQLAlchemy 2 async engine and sessions for SQLite (embedded) and PostgreSQL.

Rule: commit only at the boundary (HTTP request, job, CLI command). Services ``flush()``.
SQLite runs in WAL mode with foreign keys on and every transaction ``BEGIN IMMEDIATE`` so the
single writer is taken up front (no "database is locked" upgrade failures mid-transaction).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, LargeBinary, MetaData, String, TypeDecorator, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Bytes = LargeBinary  # BLOB on SQLite, BYTEA on PostgreSQL


def new_id() -> str:
    """A new row id: UUIDv4 text (ids are made by the application so AAD can bind them)."""
    return str(uuid.uuid4())


def id_column_type() -> String:
    return String(36)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine with per-backend settings applied.

    PostgreSQL URLs may carry ``?search_path=schema`` to place anju's tables in a schema.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    parsed = make_url(url)
    search_path = parsed.query.get("search_path")
    if search_path:
        # asyncpg takes server settings as a keyword, not a URL option: translate it.
        parsed = parsed.difference_update_query(["search_path"])
        kwargs.setdefault("connect_args", {})["server_settings"] = {"search_path": str(search_path)}
    # A pool that holds what the API, the gateway's ingest and its concurrent command delivery
    # use at once: past ``pool_size`` each extra connection is opened and closed per checkout
    # (TCP, startup, authentication — far dearer than the work it does).
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_async_engine(parsed, **kwargs)
    _drop_closed_connections(engine)
    return engine


def _drop_closed_connections(engine: AsyncEngine) -> None:
    """Hand out no pooled PostgreSQL connection the server or network has already closed.

    asyncpg notices a closed socket as it happens (the server's goodbye on a restart, a reset,
    an end of stream), so a look at :meth:`asyncpg.Connection.is_closed` at checkout finds a
    lost connection without a round trip; the pool then opens a fresh one. This replaces
    ``pool_pre_ping``, which costs ``BEGIN; ; ROLLBACK`` — three round trips, ≈ 0.5 ms of CPU —
    before every transaction. A connection that dies in the instant between checkout and use
    fails that one transaction, and SQLAlchemy then discards the whole pool (its disconnect
    handling), as it would have with the ping.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection._connection.is_closed():
            raise DisconnectionError("connection closed by the server or the network")


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (driver-level autocommit off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=ON")  # deleted PI pages are overwritten with zeros
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Owns the engine and hands out sessions."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session committed on success and rolled back on any exception (a boundary).

        Work registered with :func:`before_commit` runs in the transaction just before the
        commit (an error there rolls everything back); work registered with
        :func:`after_commit` is awaited once the commit succeeded."""
        async with self.sessionmaker() as session:
            async with session.begin():
                yield session
                await run_before_commit(session)
            after: dict[str, Callable[[], Awaitable[None]]] = session.info.pop(_AFTER_COMMIT, {})
        for work in after.values():
            await work()

    async def dispose(self) -> None:
        await self.engine.dispose()


_BEFORE_COMMIT = "anju.db.before_commit"  # Session.info key: {name: work}
_AFTER_COMMIT = "anju.db.after_commit"  # Session.info key: {name: work}


def before_commit(
    session: AsyncSession, name: str, work: Callable[[AsyncSession], Awaitable[None]]
) -> None:
    """Run ``work`` once in ``session``'s transaction right before :meth:`Database.transaction`
    commits it (registering the same ``name`` again in the transaction is a no-op). What it
    writes commits or rolls back with the rest."""
    pending: dict[str, Callable[[AsyncSession], Awaitable[None]]] = session.info.setdefault(
        _BEFORE_COMMIT, {}
    )
    pending.setdefault(name, work)


def after_commit(session: AsyncSession, name: str, work: Callable[[], Awaitable[None]]) -> None:
    """Await ``work`` once after :meth:`Database.transaction` committed ``session``'s
    transaction, before the ``async with`` block it closes returns (registering the same
    ``name`` again is a no-op). Nothing runs after a rollback."""
    pending: dict[str, Callable[[], Awaitable[None]]] = session.info.setdefault(_AFTER_COMMIT, {})
    pending.setdefault(name, work)


async def run_before_commit(session: AsyncSession) -> None:
    """Run (and forget) the work registered with :func:`before_commit`, in order; work it
    registers meanwhile runs too."""
    pending: dict[str, Callable[[AsyncSession], Awaitable[None]]] | None = session.info.get(
        _BEFORE_COMMIT
    )
    while pending:
        name = next(iter(pending))
        work = pending.pop(name)
        await work(session)


S = TypeVar("S")
E = TypeVar("E")
T = TypeVar("T")


async def run_with_failure_effects(
    db: Database,
    open_service: Callable[[AsyncSession], S],
    work: Callable[[S], Awaitable[T]],
    effects_of: Callable[[S], Sequence[Callable[[E], Awaitable[None]]]],
    open_effect_service: Callable[[AsyncSession], E],
) -> T:
    """Run ``work`` in one transaction; if it raises a domain error, commit the failure effects
    it left (failed-login counters, denied-audit entries, …) in a second transaction, then
    re-raise — so a refused request still leaves its trace although its own change rolls back."""
    from anju.errors import AnjuError

    effects: Sequence[Callable[[E], Awaitable[None]]] = ()
    try:
        async with db.transaction() as session:
            service = open_service(session)
            try:
                return await work(service)
            finally:
                effects = effects_of(service)
    except AnjuError:
        if effects:
            async with db.transaction() as session:
                follow_up = open_effect_service(session)
                for effect in effects:
                    await effect(follow_up)
        raise


def utcnow() -> datetime:
    """Current UTC time (inject a Clock in services; this is for defaults only)."""
    return datetime.now(UTC)
