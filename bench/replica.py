"""One more platform process for a benchmark's ``--processes N`` (:func:`bench.fleet.replicas`).

What ``anju serve`` runs — the HTTP API on its own loopback port and the MQTT gateway with its own
instance number — on the benchmark's database, keyring and Mosquitto. Several such processes
are how anju scales past one core: Mosquitto's shared subscription splits the devices' HELLOs
between the gateways, each process serves the sessions it holds, and a command or credential
queued through one process reaches a device held by another through PostgreSQL
``LISTEN/NOTIFY`` (docs/operations.md, "Production"). The load generator spreads its
requests over the processes' ports, as a load balancer in front of them would.

Protocol: one JSON line on stdin (``data_dir``, ``database_url``, ``settings``, ``host``,
``port``, ``instance``, ``clock_offset_seconds``: the benchmark's clock); prints
``ready <API base URL>``; stops when stdin closes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

from bench.fleet import SteppingClock, generator_stdin, served


async def replica() -> None:
    from anju.gateway.client import BrokerAddress
    from anju.platform import open_platform
    from anju.settings import Settings

    spec, stdin = await generator_stdin()
    settings = Settings(
        data_dir=Path(spec["data_dir"]), database_url=spec["database_url"], **spec["settings"]
    )
    broker = SimpleNamespace(address=BrokerAddress(spec["host"], spec["port"]))
    async with (
        open_platform(settings, clock=SteppingClock(spec["clock_offset_seconds"])) as platform,
        served(platform, broker, instance=spec["instance"]) as (_gateway, api),
    ):
        print("ready", api, flush=True)
        while await stdin.read(1 << 16):  # until the benchmark closes our stdin
            pass


if __name__ == "__main__":
    from anju.kit import aio

    sys.exit(aio.run(replica()))
