"""Helpers for records tests: an organisation with a lock at a door, signed lock events fed
through the gateway's real event batcher, and a loopback webhook receiver."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anju.devices.service import Place
from anju.gateway.events import EventBatcher, EventRow
from anju.gateway.options import GatewayCounters, GatewayOptions
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.access import sign_record
from tests.support.registry import PIN, Made, Tenant, claim, manufacture, tenant


@dataclass
class Door:
    tenant: Tenant
    lock: Made

    @property
    def org_id(self) -> str:
        assert self.tenant.admin.org_id is not None
        return self.tenant.admin.org_id


async def door(
    platform: Platform, clock: FixedClock, tmp_path: Path, *, login: str, org: str, room: str
) -> Door:
    """A new organisation whose lock is bound to room ``room``."""
    t = await tenant(platform, clock, login, org)
    made = (await manufacture(platform, tmp_path / login))[0]
    made.se.verify_pin(PIN)
    await claim(platform, t, made, Place("room", room))
    return Door(t, made)


def now_ms(clock: FixedClock) -> int:
    return int(clock.now().timestamp() * 1000)


def unlock_rec(lock: Made, at_ms: int, *, result: str = "granted", **fields: Any) -> dict[str, Any]:
    rec = {
        "dev": lock.device_id,
        "at": at_ms,
        "method": "passcode",
        "result": result,
        "reason": None if result == "granted" else "unknown_credential",
        "cred": "cred-1" if result == "granted" else None,
        "subject": "tenant-0042" if result == "granted" else None,
        "serial": None,
    }
    rec.update(fields)
    return rec


def signed(lock: Made, rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` signed by the lock's secure element, as the reference lock emits it."""
    return sign_record(rec, sign=lock.se.sign)


@dataclass
class Feed:
    """The gateway's event batcher with its counters (events arrive as the ingest adds them)."""

    platform: Platform
    counters: GatewayCounters = field(default_factory=GatewayCounters)
    batcher: EventBatcher | None = None

    def __post_init__(self) -> None:
        options = GatewayOptions(batch_max_delay_seconds=0.01)
        self.batcher = EventBatcher(self.platform, options, self.counters)

    async def send(
        self, device_id: str, kind: str, data: dict[str, Any], event_id: str | None = None
    ) -> str:
        """One ``evt`` of ``device_id`` stored through the batcher; its event id."""
        assert self.batcher is not None
        event_id = event_id or uuid.uuid4().hex
        at = int(self.platform.clock.now().timestamp() * 1000)
        self.batcher.add(
            EventRow(
                device_id=device_id,
                event_id=event_id,
                org_id=None,
                kind=kind,
                at_ms=at,
                received_ms=at,
                data=json.dumps(data, sort_keys=True, separators=(",", ":")),
                session_id="00" * 8,
                seq=1,
            )
        )
        await self.batcher.drain()
        return event_id

    async def stop(self) -> None:
        assert self.batcher is not None
        await self.batcher.stop()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """A loopback HTTP server answering webhook POSTs with scripted status codes (or a stall)."""

    def __init__(self, statuses: list[int | None] | None = None) -> None:
        self.statuses = list(statuses or [])  # None: never answer (the sender times out)
        self.received: list[Received] = []
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks/anju"

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = {}
            for line in lines:
                if ":" in line:
                    k, _, v = line.partition(":")
                    headers[k.strip()] = v.strip()
            length = int(headers.get("Content-Length", headers.get("content-length", "0")))
            body = await reader.readexactly(length)
            loop = asyncio.get_running_loop()
            self.received.append(Received(headers, body, loop.time()))
            self.arrived.set()
            code = self.statuses.pop(0) if self.statuses else 200
            if code is None:
                await asyncio.sleep(30)  # longer than the sender's timeout
                return
            writer.write(
                f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
