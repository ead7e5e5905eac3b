"""A minimal HTTP/1.1 JSON client for load generators.

httpx spends about a millisecond of CPU per request; at 100 requests/s on this 2-core machine
that made the load generator — not the platform — the first process to run out of CPU, and its
backlog was then counted as the platform's latency. This client keeps connections alive, sends
one request per connection at a time with a pre-built header block, and parses only the status
line, ``Content-Length`` and ``Connection``. Loopback benchmarks only: no TLS, no redirects, no
chunked bodies (the anju API answers with ``Content-Length``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

Error = (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError)  # what to count


class _Unanswered(ConnectionResetError):
    """The connection was gone before any byte of an answer arrived."""


class RawHttpClient:
    """``await client.post_json(path, body) -> (status, body bytes)`` over pooled connections."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        max_connections: int = 200,
        timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"need http://host:port, not {base_url!r}")
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        fixed = {"Host": f"{self.host}:{self.port}", "Content-Type": "application/json", **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode()
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def post_json(self, path: str, body: Any) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        request = (
            f"POST {path} HTTP/1.1\r\n".encode()
            + self._head
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        async with self._slots:
            return await asyncio.wait_for(self._exchange(request), self.timeout)

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        while self._idle:
            # A kept-alive connection the server closed meanwhile (its idle timeout) fails
            # before any answer: the request did not reach the server, so send it again.
            try:
                return await self._over(*self._idle.pop(), request)
            except _Unanswered:
                continue
        return await self._over(*await asyncio.open_connection(self.host, self.port), request)

    async def _over(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[int, bytes]:
        keep = False
        try:
            try:
                writer.write(request)
                status_line = await reader.readline()
            except ConnectionError as exc:
                raise _Unanswered(str(exc)) from exc
            if not status_line:
                raise _Unanswered("the server closed the connection")
            status = int(status_line.split(b" ", 2)[1])
            length, reusable = 0, True
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    reusable = False
            data = await reader.readexactly(length)
            keep = reusable  # only a connection read to the end of its answer is reused
            return status, data
        finally:
            if keep:
                self._idle.append((reader, writer))
            else:
                writer.close()

    async def aclose(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


class Balanced:
    """:class:`RawHttpClient` over several platform processes: each request goes to the next
    base URL in turn, as a round-robin load balancer in front of them would send it."""

    def __init__(self, base_urls: list[str], headers: dict[str, str]) -> None:
        if not base_urls:
            raise ValueError("need at least one base URL")
        self._clients = [RawHttpClient(url, headers) for url in base_urls]
        self._next = 0

    async def post_json(self, path: str, body: Any) -> tuple[int, bytes]:
        client = self._clients[self._next]
        self._next = (self._next + 1) % len(self._clients)
        return await client.post_json(path, body)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
