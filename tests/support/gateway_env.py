"""Running brokers and gateways inside tests (embedded amqtt, a private Mosquitto)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from anju.gateway.broker import EmbeddedBroker
from anju.gateway.client import BrokerAddress
from anju.gateway.mosquitto import write_mosquitto_files
from anju.gateway.options import GatewayOptions
from anju.gateway.runner import Gateway
from anju.platform import Platform
from tests.support.services import require_service

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``predicate`` until it holds (AssertionError after ``within`` seconds)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def embedded_broker(platform: Platform) -> AsyncIterator[EmbeddedBroker]:
    broker = EmbeddedBroker(platform, port=0)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


@dataclass(frozen=True)
class MosquittoProcess:
    address: BrokerAddress
    process: asyncio.subprocess.Process


@contextlib.asynccontextmanager
async def mosquitto_process(
    platform: Platform, directory: Path, *, keep_log: bool = True
) -> AsyncIterator[MosquittoProcess]:
    """``mosquitto -c`` with the generated files on a free loopback port; killed afterwards.

    ``keep_log=False`` discards its log (thousands of connections would fill an unread pipe).
    """
    require_service("mosquitto binary", shutil.which(MOSQUITTO) is not None)
    port = free_port()
    # Run as whoever runs the tests (as root, Mosquitto would otherwise switch to "mosquitto",
    # which cannot read the 0600 files).
    user = getpass.getuser()
    files = await write_mosquitto_files(
        platform, directory, port=port, persistence=False, user=user
    )
    process = await asyncio.create_subprocess_exec(
        MOSQUITTO,
        "-c",
        str(files.config),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE if keep_log else asyncio.subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if process.returncode is not None or time.monotonic() > deadline:
                    err = await process.stderr.read() if process.stderr else b""
                    raise RuntimeError(f"mosquitto did not start: {err.decode()}") from None
                await asyncio.sleep(0.05)
        yield MosquittoProcess(BrokerAddress("127.0.0.1", port, version=5), process)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def private_mosquitto(platform: Platform, directory: Path) -> AsyncIterator[BrokerAddress]:
    """``mosquitto -c`` with the generated files on a free loopback port; its address."""
    async with mosquitto_process(platform, directory) as running:
        yield running.address


@contextlib.asynccontextmanager
async def running_gateway(
    platform: Platform,
    address: BrokerAddress,
    options: GatewayOptions | None = None,
    *,
    share_group: str = "anju",
) -> AsyncIterator[Gateway]:
    gateway = Gateway(platform, address, options, share_group=share_group)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()
