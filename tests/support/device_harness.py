"""Helpers to run reference firmware in tests: quick client options, running locks, stand-ins."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from anju.device.client import Backoff, ClientOptions
from anju.device.lock import LockFirmware
from tests.support.fake_gateway import FakeGateway, MadeDevice, Pki
from tests.support.services import MOSQUITTO_HOST, MOSQUITTO_PORT


def fast_options(**overrides: Any) -> ClientOptions:
    values: dict[str, Any] = {
        "host": MOSQUITTO_HOST,
        "port": MOSQUITTO_PORT,
        "keepalive_s": 10,
        "connect_timeout_s": 3.0,
        "handshake_timeout_s": 1.5,
        "backoff": Backoff(base_s=0.05, cap_s=0.4),
    }
    values.update(overrides)
    return ClientOptions(**values)


@contextlib.asynccontextmanager
async def running(lock: LockFirmware) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(lock.run())
    try:
        yield task
    finally:
        await lock.stop()
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def gateway(pki: Pki, *devices: MadeDevice, **kwargs: Any) -> AsyncIterator[FakeGateway]:
    fake = FakeGateway(pki, list(devices), **kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def wait_until(predicate: Any, seconds: float = 10.0) -> None:
    """Poll ``predicate`` (counters on objects that offer no event) for up to ``seconds``."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
