"""Request and answer over the device's session: one request in flight, matched by a key.

The firmware agent asks for chunks (``fw_get`` → ``fw_chunk``), the face agent for keys and
templates (``bio_get`` → ``bio_data``); both wait the same way: send, wait for the answer with
the same key, try again after a timeout, give up after a number of tries, and stop at once when
the session ends (the answer would come in a session that is gone).
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any, Protocol

from anju.errors import AnjuError


class Uplink(Protocol):
    """What the agents need from the device's connection (``DeviceClient`` has it)."""

    @property
    def connected(self) -> bool: ...

    def send(self, message: dict[str, Any]) -> None: ...

    async def flush(self) -> None: ...


class Offline(Exception):
    """No session (or it ended while waiting): carry on when the next one is up."""


class Exchange:
    """One outstanding request at a time over ``uplink``."""

    def __init__(self, uplink: Uplink, *, timeout_s: float, attempts: int) -> None:
        self.uplink = uplink
        self.timeout_s = timeout_s
        self.attempts = attempts
        self._waiting: tuple[Hashable, asyncio.Future[dict[str, Any] | None]] | None = None

    async def ask(self, request: dict[str, Any], key: Hashable) -> dict[str, Any] | None:
        """The answer to ``request`` (the message :meth:`answer` gets with ``key``); None when
        none came after every try. :class:`Offline` without a session or when it ended."""
        for _ in range(self.attempts):
            if not self.uplink.connected:
                raise Offline
            future: asyncio.Future[dict[str, Any] | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._waiting = (key, future)
            try:
                self.uplink.send(request)
                reply = await asyncio.wait_for(future, self.timeout_s)
            except TimeoutError:
                continue
            except AnjuError:  # NotConnected
                raise Offline from None
            finally:
                self._waiting = None
            if reply is None:
                raise Offline
            return reply
        return None

    def answer(self, key: Hashable, message: dict[str, Any]) -> None:
        """A downlink answer: it ends the wait for the request with the same key, if any."""
        waiting = self._waiting
        if waiting is not None and waiting[0] == key and not waiting[1].done():
            waiting[1].set_result(message)

    def abandon(self) -> None:
        """Stop waiting (the session ended, or the request no longer matters)."""
        if self._waiting is not None and not self._waiting[1].done():
            self._waiting[1].set_result(None)
