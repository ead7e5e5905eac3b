"""Queue a device command from another OS process (``python -m tests.support.other_process``).

Used to show that a gateway is woken by commands committed elsewhere (PostgreSQL NOTIFY), not
only by its own process's commits.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from anju.devices.commands import CommandService
from anju.platform import open_platform
from anju.settings import Settings


async def enqueue_command(data_dir: Path, database_url: str, device_id: str, name: str) -> str:
    settings = Settings(data_dir=data_dir, database_url=database_url)
    async with open_platform(settings) as platform, platform.db.transaction() as session:
        command = await CommandService(platform, session).enqueue(
            "cli", None, device_id, name, {}, 600
        )
        return command.id


async def run_enqueue_elsewhere(
    data_dir: Path, database_url: str, device_id: str, name: str = "unlock"
) -> str:
    """Run :func:`enqueue_command` in a child Python process; the new command's id."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.other_process",
        str(data_dir),
        database_url,
        device_id,
        name,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0, err.decode()
    return out.decode().strip()


if __name__ == "__main__":
    data_dir, url, device, command_name = sys.argv[1:5]
    print(asyncio.run(enqueue_command(Path(data_dir), url, device, command_name)))
