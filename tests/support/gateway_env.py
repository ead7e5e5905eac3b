"""Running brokers and gateways inside tests (embedded amqtt, a private Mosquitto)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
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


async def end_process(process: asyncio.subprocess.Process | None, *, grace: float) -> None:
    """SIGTERM and up to ``grace`` seconds to exit, then SIGKILL (``grace=0``: SIGKILL at once)."""
    if process is None or process.returncode is not None:
        return
    if grace > 0:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
            return
        except TimeoutError:
            pass
    process.kill()
    await process.wait()


class MosquittoProcess:
    """A private ``mosquitto -c`` on the generated files, which a test may kill and restart on
    the same port (never the system broker other tests use). Its log goes to ``mosquitto.log``
    in the directory (a pipe nobody reads would stall a chatty broker)."""

    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.port = port
        self.log = config.parent / "mosquitto.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress("127.0.0.1", self.port, version=5)

    async def start(self) -> None:
        """Start it and wait until it accepts connections."""
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                MOSQUITTO,
                "-c",
                str(self.config),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )
        self.starts += 1
        deadline = time.monotonic() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                if self.process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"mosquitto did not start: {self.log.read_text(errors='replace')[-2000:]}"
                    ) from None
                await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no clean shutdown, no goodbye to its clients."""
        await end_process(self.process, grace=0)

    async def stop(self) -> None:
        await end_process(self.process, grace=5)


@contextlib.asynccontextmanager
async def mosquitto_process(platform: Platform, directory: Path) -> AsyncIterator[MosquittoProcess]:
    """A started :class:`MosquittoProcess` with the generated files on a free loopback port."""
    require_service("mosquitto binary", shutil.which(MOSQUITTO) is not None)
    # Run as whoever runs the tests (as root, Mosquitto would otherwise switch to "mosquitto",
    # which cannot read the 0600 files).
    port = free_port()
    files = await write_mosquitto_files(
        platform, directory, port=port, persistence=False, user=getpass.getuser()
    )
    broker = MosquittoProcess(files.config, port)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


class RestartableEmbeddedBroker:
    """The embedded broker on a fixed port, which a test may stop and start again (a new
    broker on the same port: nothing of the old one survives, as after a process restart)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.broker = EmbeddedBroker(platform, port=0)
        self.port = 0
        self.starts = 0
        self.running = False

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress("127.0.0.1", self.port, version=3)

    async def start(self) -> None:
        if self.starts:
            self.broker = EmbeddedBroker(self.platform, port=self.port)
        await self.broker.start()
        self.port = self.broker.port
        self.starts += 1
        self.running = True

    async def kill(self) -> None:
        """Shut the broker down (in-process: the closest to a crash that leaves the port free)."""
        if self.running:
            self.running = False
            await self.broker.stop()

    async def stop(self) -> None:
        await self.kill()


@contextlib.asynccontextmanager
async def private_mosquitto(platform: Platform, directory: Path) -> AsyncIterator[BrokerAddress]:
    """``mosquitto -c`` with the generated files on a free loopback port; stopped afterwards."""
    async with mosquitto_process(platform, directory) as broker:
        yield broker.address


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
