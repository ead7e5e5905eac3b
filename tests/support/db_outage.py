"""Database faults for the platform under test, never for the shared database server.

* PostgreSQL: the platform reaches the server through a :class:`TcpProxy`
  (:func:`proxied_url`); an outage resets its open connections and refuses new ones, as when
  the server restarts or the network to it fails, then lets them through again.
* SQLite: a file has no connection to lose. The closest real fault is another process holding
  the write lock (a backup, a migration, a stuck writer): the platform's writes wait on SQLite's
  busy timeout and reads go on (WAL). :class:`SqliteWriteLock` holds that lock for the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import make_url

from tests.support.tcp_proxy import TcpProxy


def proxied_url(database_url: str, proxy: TcpProxy) -> str:
    """The same PostgreSQL database, reached through ``proxy``."""
    url = make_url(database_url).set(host=proxy.host, port=proxy.port)
    return url.render_as_string(hide_password=False)


def postgres_target(database_url: str) -> tuple[str, int]:
    url = make_url(database_url)
    return url.host or "127.0.0.1", url.port or 5432


class DatabaseOutage(Protocol):
    """Something that can take the platform's database away and give it back."""

    kind: str

    async def begin(self) -> None: ...

    async def end(self) -> None: ...

    def lasting(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The outage for the duration of a block (ended even when the block fails)."""
        ...


class _Lasting:
    """``lasting()`` for both kinds of outage."""

    async def begin(self) -> None:
        raise NotImplementedError

    async def end(self) -> None:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def lasting(self) -> AsyncIterator[None]:
        await self.begin()
        try:
            yield
        finally:
            await self.end()


class PostgresOutage(_Lasting):
    """The proxy to PostgreSQL resets every connection and refuses new ones until :meth:`end`."""

    kind = "connections lost"

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy

    async def begin(self) -> None:
        self.proxy.refuse()
        self.proxy.cut()

    async def end(self) -> None:
        self.proxy.restore()


class SqliteWriteLock(_Lasting):
    """Another connection holds the SQLite write lock (``BEGIN EXCLUSIVE``) until :meth:`end`."""

    kind = "writes blocked"

    def __init__(self, database: Path) -> None:
        self.database = database
        self._conn: sqlite3.Connection | None = None

    async def begin(self) -> None:
        def lock() -> sqlite3.Connection:
            conn = sqlite3.connect(
                self.database, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("BEGIN EXCLUSIVE")
            return conn

        self._conn = await asyncio.to_thread(lock)

    async def end(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(conn.close)  # the open transaction is rolled back


def sqlite_file(database_url: str) -> Path:
    database = make_url(database_url).database
    assert database, "an in-memory SQLite database cannot be locked from outside"
    return Path(database)
