"""Shared set-up of the device-platform benchmarks: a fresh database, a fleet of registered
devices with real software SEs, a private Mosquitto, and the light load-generator side.

The platform side (this process) uses :func:`bench_platform`, :func:`provision` and
:func:`private_mosquitto`. A generator process (``python -m bench.<name> --generator``) reads a
JSON spec from stdin and uses :func:`connect_device`: raw gmqtt plus the protocol's
:class:`~anju.protocol.handshake.DeviceHandshake` over each device's software SE — the same
handshake a lock does, without the firmware's extras, so the generator stays light.

Simulated devices keep their SE "flash" under /dev/shm when it exists: the SE fsyncs every
state change (power-loss safety), and thousands of simulated devices sharing one disk would
measure the disk, not the platform. A real lock has its own flash.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import ctypes
import gc
import json
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from anju.kit import aio

POSTGRES_URL = os.environ.get(
    "ANJU_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
PIN = b"bench-pin-1234"
SHM = Path("/dev/shm")


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process (``/proc/<pid>/status`` VmRSS), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def settled_rss_mb() -> float:
    """This process's RSS after a full collection and handing freed heap back to the OS (glibc
    ``malloc_trim``), so garbage from the set-up does not hide what is kept afterwards."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_mb()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scratch_dir(prefix: str) -> Path:
    """A fresh directory for one run (on tmpfs when available; see the module docstring)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=SHM if SHM.is_dir() else None))


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 / p95 / p99 / max of ``values`` (NaN when there are too few)."""
    if len(values) < 2:
        nan = float("nan")
        return {"p50": nan, "p95": nan, "p99": nan, "max": max(values, default=nan)}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(values)}


def against_target(label: str, p: dict[str, float], target_p99_ms: float) -> str:
    """``label: p50 … p95 … p99 … max … — target p99 < T ms: met`` (or NOT met)."""
    verdict = "met" if p["p99"] < target_p99_ms else "NOT met"
    return (
        f"{label}: p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, p99 {p['p99']:.1f} ms, "
        f"max {p['max']:.1f} ms — target p99 < {target_p99_ms:.0f} ms: {verdict}"
    )


def audit_appends(platform: Any) -> str:
    """How this process's transactions put the audit entries they recorded at commit into the
    tree (anju.audit.sequencer): under a free tree lock, or queued for a shared round."""
    from anju.audit.sequencer import sequencer_for

    seq = sequencer_for(platform.db)
    return (
        f"audit entries recorded at commit (this process): {seq.appended_at_commit} "
        f"transactions appended them under a free tree lock, {seq.queued_at_commit} queued them "
        f"for {seq.rounds} sequencer rounds"
    )


def load_average() -> str:
    """The 1/5/15-minute load averages, to print beside the figures."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"


# --- the platform side -------------------------------------------------------------------------
class SteppingClock:
    """The real clock, which set-up can also move forward (``advance``, as the test helpers do
    to reach a fresh TOTP step); the figures are differences of its readings."""

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self._offset = timedelta(seconds=offset_seconds)

    @property
    def offset_seconds(self) -> float:
        """How far set-up has moved it ahead of the real clock (replicas start there too)."""
        return self._offset.total_seconds()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, **delta: float) -> datetime:
        self._offset += timedelta(**delta)
        return self.now()


@contextlib.asynccontextmanager
async def bench_platform(
    tmp: Path, db_kind: str = "postgres", clock: Any = None, **settings: Any
) -> AsyncIterator[Any]:
    """A migrated database (PostgreSQL: a fresh schema, dropped afterwards) and a new keyring."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from anju.db import Database
    from anju.migrations import upgrade
    from anju.platform import Platform, open_key_provider
    from anju.settings import Settings

    schema = None
    admin = None
    if db_kind == "postgres":
        schema = f"anju_bench_{secrets.token_hex(4)}"
        admin = create_async_engine(POSTGRES_URL)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{POSTGRES_URL}?search_path={schema}"
    else:
        url = f"sqlite+aiosqlite:///{tmp / 'anju.db'}"
    config = Settings(data_dir=tmp / "data", database_url=url, **settings)
    config.data_dir.mkdir(parents=True)
    keys = open_key_provider(config, create=True)
    db = Database(url)
    try:
        await upgrade(db)
        if clock is None:
            yield Platform(settings=config, db=db, keys=keys)
        else:
            yield Platform(settings=config, db=db, keys=keys, clock=clock)
    finally:
        await db.dispose()
        if admin is not None:
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()


def _manufacture(se_dir: str) -> tuple[str, str, bytes, bytes]:
    from anju.device.secure_element import SoftwareSecureElement
    from anju.kit.crypto import random_bytes

    device_id = random_bytes(16).hex()
    path = Path(se_dir) / device_id
    _, record = SoftwareSecureElement.manufacture(path, device_id=device_id, pin=PIN)
    return device_id, record.se_id, record.public_key.raw, record.root_key


@dataclass
class Fleet:
    org_id: str
    devices: list[dict[str, str]]  # device_id, se_dir, certificate (hex)


async def provision(
    platform: Any, tmp: Path, count: int, *, org_id: str | None = None, workers: int = 2
) -> Fleet:
    """``count`` devices through the factory step, imported and registered to ``org_id``
    (default: a new organisation) — the services the CLI uses.

    Runs in a child process (``python -m bench.fleet``) so the measured process starts without
    the garbage of making thousands of devices: its memory growth is the devices' sessions.
    """
    settings = platform.settings
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.fleet",
        str(settings.data_dir),
        settings.resolved_database_url,
        str(tmp / "se"),
        str(count),
        org_id or "-",
        str(workers),
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 26,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"provisioning failed (exit {child.returncode})")
    made = json.loads(out)
    return Fleet(made["org_id"], made["devices"])


async def _provision_here(
    data_dir: Path, url: str, se_root: Path, count: int, org_id: str | None, workers: int
) -> dict[str, Any]:
    from anju.accounts.service import AccountService
    from anju.devices.provisioning import FactoryRecord, ProvisioningService
    from anju.kit.crypto import SM2PublicKey
    from anju.platform import open_platform
    from anju.settings import Settings

    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        made = await asyncio.gather(
            *(loop.run_in_executor(pool, _manufacture, str(se_root)) for _ in range(count))
        )
    async with open_platform(Settings(data_dir=data_dir, database_url=url)) as platform:
        if org_id is None:
            async with platform.db.transaction() as session:
                org = await AccountService(platform, session).create_organisation(
                    f"bench {secrets.token_hex(3)}", "other", actor="cli"
                )
                org_id = org.id
        devices: list[dict[str, str]] = []
        for start in range(0, count, 500):  # one transaction per 500 devices
            chunk = made[start : start + 500]
            async with platform.db.transaction() as session:
                svc = ProvisioningService(platform, session)
                await svc.product_for_manufacture("lock-x1", "lock")
                records = [FactoryRecord(d, s, SM2PublicKey(p), r) for d, s, p, r in chunk]
                rows = await svc.import_factory_records("lock-x1", records)
                for (device_id, *_), row in zip(chunk, rows, strict=True):
                    await svc.register_device_as_operator(row.id, org_id)
                    devices.append(
                        {
                            "device_id": device_id,
                            "se_dir": str(se_root / device_id),
                            "certificate": row.certificate.hex(),
                        }
                    )
    return {"org_id": org_id, "devices": devices}


@contextlib.asynccontextmanager
async def served(
    platform: Any, broker: Any, *, instance: int = 0
) -> AsyncIterator[tuple[Any, str]]:
    """What ``anju serve`` runs, in this process: the gateway (``instance``) on ``broker`` and
    the HTTP API on a free loopback port; yields (gateway, API base URL)."""
    import uvicorn

    from anju.cli.serve import http_app
    from anju.gateway.options import GatewayOptions
    from anju.gateway.runner import Gateway
    from anju.kit.heap import freeze_startup_heap

    gateway = Gateway(platform, broker.address, GatewayOptions(instance=instance))
    await gateway.start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            http_app(platform, gateway),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    freeze_startup_heap()  # as anju serve does once started
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110  (uvicorn offers no event for it)
            await asyncio.sleep(0.05)
        yield gateway, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
        await gateway.stop()


@dataclass
class Replicas:
    """The platform processes :func:`replicas` started besides this one."""

    processes: list[asyncio.subprocess.Process]
    apis: list[str]  # their API base URLs

    def cpu_seconds(self) -> float:
        """Their CPU time so far, together."""
        return sum(cpu_seconds(p.pid) for p in self.processes)


@contextlib.asynccontextmanager
async def replicas(platform: Any, broker: Any, count: int) -> AsyncIterator[Replicas]:
    """``count`` more platform processes (:mod:`bench.replica`) on this platform's database,
    keyring and ``broker``, gateway instances 1…count; stopped on exit."""
    settings = platform.settings
    spec = {
        "data_dir": str(settings.data_dir),
        "database_url": settings.resolved_database_url,
        "settings": settings.model_dump(
            mode="json", exclude_unset=True, exclude={"data_dir", "database_url"}
        ),
        "host": broker.address.host,
        "port": broker.address.port,
        # Every process stamps the same clock: a push queued in one and confirmed in another
        # is measured across both.
        "clock_offset_seconds": getattr(platform.clock, "offset_seconds", 0.0),
    }
    started = Replicas([], [])
    try:
        for instance in range(1, count + 1):
            process = await start_child("bench.replica", spec | {"instance": instance})
            started.processes.append(process)
        for process in started.processes:
            words = await read_line(process, 120)
            assert words[0] == "ready", words
            started.apis.append(words[1])
        yield started
    finally:
        for process in started.processes:
            assert process.stdin is not None
            process.stdin.close()
        for process in started.processes:
            await process.wait()


@contextlib.asynccontextmanager
async def platform_processes(
    platform: Any, broker: Any, count: int
) -> AsyncIterator[tuple[Any, list[str], Replicas]]:
    """``count`` platform processes: this one (:func:`served`) and ``count - 1``
    :func:`replicas`; yields (this process's gateway, every API base URL, the replicas)."""
    async with (
        served(platform, broker) as (gateway, api),
        replicas(platform, broker, count - 1) as more,
    ):
        yield gateway, [api, *more.apis], more


def add_warmup_option(parser: argparse.ArgumentParser) -> None:
    """``--warmup S``: S seconds of the same load before the measured ones. A platform that
    has just started compiles statements, fills its connection pool and caches and builds a
    backlog meanwhile; those first seconds are reported apart, as cold start."""
    parser.add_argument(
        "--warmup",
        type=float,
        default=5.0,
        help="seconds of the same load before the measured ones (reported apart as cold start)",
    )


def add_processes_option(parser: argparse.ArgumentParser) -> None:
    """``--processes N``: run the platform as N processes (:func:`platform_processes`)."""
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="platform processes (this one and N-1 replicas sharing the database and broker; "
        "requests go to each in turn)",
    )


def generator_main(
    parser: argparse.ArgumentParser,
    generator: Callable[[], Coroutine[Any, Any, None]],
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]],
    report: Callable[[dict[str, Any]], None],
) -> None:
    """The command line of a benchmark with a load-generator process: ``--generator`` runs the
    generator (started by :func:`start_generator`), otherwise the measured run with the load
    average printed around it; ``--profile FILE`` is for ``run`` to pass to :func:`profiled`."""
    parser.add_argument("--generator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help="write the platform process's cProfile stats here")
    args = parser.parse_args()
    if args.generator:
        aio.run(generator())
        return
    print(f"# {load_average()} before the run", flush=True)
    report(aio.run(run(args)))
    print(f"# {load_average()} after the run", flush=True)


@contextlib.contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """cProfile the block and write the stats to ``path`` (nothing when None)."""
    if path is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)


@contextlib.asynccontextmanager
async def private_mosquitto(platform: Any, directory: Path) -> AsyncIterator[Any]:
    """``mosquitto -c`` with the generated files (a password per device) on a free port, as
    the tests run it; ``.address`` and ``.process`` (its log goes to a file there)."""
    from tests.support.gateway_env import mosquitto_process

    async with mosquitto_process(platform, directory) as running:
        yield running


async def start_generator(module: str, spec: dict[str, Any]) -> asyncio.subprocess.Process:
    """``python -m <module> --generator`` with ``spec`` as one JSON line on its stdin."""
    return await start_child(module, spec, "--generator")


async def start_child(module: str, spec: dict[str, Any], *argv: str) -> asyncio.subprocess.Process:
    """``python -m <module> <argv>`` with ``spec`` as one JSON line on its stdin."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 24,
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(spec).encode() + b"\n")
    await process.stdin.drain()
    return process


async def read_line(process: asyncio.subprocess.Process, within: float) -> list[str]:
    """The next line a generator printed, split into words (EOF: an error)."""
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), within)
    if not line:
        raise RuntimeError(f"the generator ended early (exit {await process.wait()})")
    return line.decode().split()


# --- the generator side ------------------------------------------------------------------------
async def generator_stdin() -> tuple[dict[str, Any], asyncio.StreamReader]:
    """The spec the platform side wrote (first line of stdin) and a reader for what follows."""
    reader = asyncio.StreamReader(limit=1 << 26)
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    spec: dict[str, Any] = json.loads(await reader.readline())
    return spec, reader


def open_secure_elements(devices: list[dict[str, str]]) -> list[Any]:
    """Each device's SE, opened and unlocked with the factory PIN (as a lock does at boot)."""
    from anju.device.secure_element import SoftwareSecureElement

    elements = []
    for d in devices:
        se = SoftwareSecureElement.open(Path(d["se_dir"]))
        se.verify_pin(PIN)
        elements.append(se)
    return elements


@dataclass
class Connected:
    device_id: str
    client: Any  # gmqtt.Client
    channel: Any  # SecureChannel
    topic: str  # the session's uplink topic


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def connect_device(
    d: dict[str, str],
    se: Any,
    ca: Any,
    host: str,
    port: int,
    *,
    keepalive: int = 60,
    on_message: Callable[[Connected, bytes], None] | None = None,
    within: float = 60.0,
) -> Connected:
    """Connect one device (MQTT 3.1.1, its own credentials), run HELLO/WELCOME/CONFIRM.

    Downlink frames after the handshake go to ``on_message`` (without one they are dropped).
    """
    import gmqtt
    from gmqtt.mqtt.constants import MQTTv311

    from anju.protocol.certificates import Certificate
    from anju.protocol.handshake import DeviceHandshake
    from anju.protocol.keys import MQTT_PASSWORD_LABEL
    from anju.protocol.topics import down_topic, session_up_topic, up_topic

    device_id = d["device_id"]
    inbox: asyncio.Queue[bytes] = asyncio.Queue()
    subscribed = asyncio.Event()
    connected: Connected | None = None

    def message(_c: Any, _t: str, payload: bytes, _q: int, _p: Any) -> int:
        if connected is None:
            inbox.put_nowait(payload)  # the WELCOME
        elif on_message is not None:
            on_message(connected, payload)
        # else: received (e.g. evt_acks: the gateway paid for them) and dropped
        return 0

    client = gmqtt.Client(device_id, clean_session=True)
    password = se.hmac(MQTT_PASSWORD_LABEL, bytes.fromhex(device_id)).hex()
    client.set_auth_credentials(device_id, password)
    client.set_config({"reconnect_retries": 0})
    client.on_message = message
    client.on_subscribe = lambda *_: subscribed.set()
    await client.connect(host, port, version=MQTTv311, keepalive=keepalive)
    client.subscribe(down_topic(device_id), qos=1)
    await asyncio.wait_for(subscribed.wait(), within)
    cert = Certificate.decode(bytes.fromhex(d["certificate"]))
    handshake = DeviceHandshake(device_id, cert, se, ca, now_ms=now_ms)
    client.publish(up_topic(device_id), handshake.hello(), qos=1)
    channel, confirm = handshake.on_welcome(await asyncio.wait_for(inbox.get(), within))
    topic = session_up_topic(device_id, int.from_bytes(channel.session_id[:2], "big"))
    client.publish(topic, confirm, qos=1)
    connected = Connected(device_id, client, channel, topic)
    return connected


if __name__ == "__main__":
    _dir, _url, _se, _count, _org, _workers = sys.argv[1:7]
    Path(_se).mkdir(parents=True, exist_ok=True)
    _made = aio.run(
        _provision_here(
            Path(_dir), _url, Path(_se), int(_count), None if _org == "-" else _org, int(_workers)
        )
    )
    print(json.dumps(_made))


def locks_spec(
    platform: Any, broker: Any, fleet: Fleet, apis: list[str], token: str
) -> dict[str, Any]:
    """What a generator needs to connect the fleet's locks and call the API as ``token``."""
    from anju.devices.ca import ca_public_key_pem

    return {
        "ca_pem": ca_public_key_pem(platform.keys),
        "host": broker.address.host,
        "port": broker.address.port,
        "devices": fleet.devices,
        "apis": apis,  # the API of every platform process: requests go to each in turn
        "token": token,
    }


async def measured_generator(
    module: str,
    spec: dict[str, Any],
    profile: str | None,
    within: float,
    others: Replicas | None = None,
    now: Callable[[], datetime] | None = None,
) -> tuple[dict[str, Any], float, datetime | None]:
    """Start ``module``'s generator, wait for ``ready`` — and, with ``now`` (the platform's
    clock), for ``measuring`` after its warm-up — then measure the platform processes (this
    one, also cProfiled into ``profile``, and ``others``) until the generator's ``done``
    summary; (summary, their CPU seconds together, ``now()`` when measuring began)."""
    gen = await start_generator(module, spec)
    assert (await read_line(gen, 900))[0] == "ready"
    measured_from = None
    if now is not None:
        assert (await read_line(gen, within))[0] == "measuring"
        measured_from = now()
    with profiled(profile):
        cpu0 = time.process_time() + (others.cpu_seconds() if others else 0.0)
        words = await read_line(gen, within)
        cpu = time.process_time() + (others.cpu_seconds() if others else 0.0) - cpu0
    assert words[0] == "done", words
    await gen.wait()
    return json.loads(" ".join(words[1:])), cpu, measured_from
