"""``anju serve`` in a child process, which a test can kill like a crash (SIGKILL) and start again.

The child shares the test's data directory (keyring) and database and uses an external broker
(``ANJU_MQTT_URL``): exactly what a production process has, and nothing of it survives a kill
except what it stored. Its output goes to ``serve-N.log`` beside the data directory.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import httpx

from anju.settings import Settings
from tests.support.gateway_env import end_process, free_port

ANJU = Path(sys.executable).with_name("anju")


class ServeProcess:
    """One ``anju serve`` at a time for ``settings``, on a free HTTP port."""

    def __init__(self, settings: Settings, mqtt_url: str, *, instance: int = 0) -> None:
        self.settings = settings
        self.env = {
            **os.environ,
            "ANJU_DATABASE_URL": settings.resolved_database_url,
            "ANJU_MQTT_URL": mqtt_url,
            "ANJU_GATEWAY_INSTANCE": str(instance),
            "ANJU_LOG_JSON": "false",
        }
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.settings.data_dir.parent / f"serve-{self.starts}.log"

    async def start(self, within: float = 60.0) -> None:
        """Start it and wait until it answers /healthz."""
        self.port = free_port()
        self.starts += 1
        with self.log.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(ANJU),
                "serve",
                "--data-dir",
                str(self.settings.data_dir),
                "--port",
                str(self.port),
                env=self.env,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while True:
                if self.process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"anju serve did not start:\n{self.tail()}")
                try:
                    response = await client.get(f"http://127.0.0.1:{self.port}/healthz")
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    async def kill(self) -> None:
        """SIGKILL: nothing is flushed, stored, released or said goodbye to."""
        await end_process(self.process, grace=0)

    async def stop(self) -> None:
        """SIGTERM: the clean shutdown ``anju serve`` does for a service manager."""
        await end_process(self.process, grace=20)
