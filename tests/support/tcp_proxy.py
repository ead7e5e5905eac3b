"""A TCP proxy for fault injection: put it between clients and a service, then cut, refuse, restore.

    async with TcpProxy("127.0.0.1", 5432) as proxy:   # listens on proxy.port
        ...connect clients to 127.0.0.1:proxy.port...
        proxy.cut()       # every open connection is reset (both sides see it drop)
        proxy.refuse()    # new connections are accepted and reset at once: the service is "down"
        proxy.restore()   # new connections reach the service again

Only the proxied connections are affected: the service itself (the system PostgreSQL or a
Mosquitto other tests use) is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

CHUNK = 65536


@dataclass
class ProxyCounters:
    accepted: int = 0  # connections passed through to the service
    refused: int = 0  # connections reset on arrival (refusing) or because the service was down
    cut: int = 0  # open connections reset by cut()


class _Link:
    """One client connection and its connection to the service."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            writer.transport.abort()


class TcpProxy:
    """Forwards connections on a free loopback port to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.counters = ProxyCounters()
        self._refusing = False
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- faults -----------------------------------------------------------------------------------
    @property
    def open_connections(self) -> int:
        return len(self._links)

    def cut(self) -> int:
        """Reset every open connection (no FIN: both ends see an error); how many there were."""
        links, self._links = self._links, set()
        for link in links:
            link.reset()
        self.counters.cut += len(links)
        return len(links)

    def refuse(self) -> None:
        """Reset new connections as they arrive (open ones are left alone: see cut())."""
        self._refusing = True

    def restore(self) -> None:
        """Pass new connections through again."""
        self._refusing = False

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Cut everything and refuse new connections until the block ends."""
        self.refuse()
        self.cut()
        try:
            yield
        finally:
            self.restore()

    # -- forwarding -------------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            self.counters.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self.counters.refused += 1
            writer.transport.abort()
            return
        if self._refusing:  # refused while we were connecting
            self.counters.refused += 1
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self.counters.accepted += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(link, source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, link: _Link, source: asyncio.StreamReader, sink: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await source.read(CHUNK):
                sink.write(data)
                await sink.drain()
        except (OSError, RuntimeError):
            pass
        finally:
            # Either side closing ends the pair: close both so nothing is left half-open.
            if link in self._links:
                self._links.discard(link)
                for end in (link.client, link.upstream):
                    end.close()
