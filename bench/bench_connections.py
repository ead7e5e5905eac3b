"""Thousands of devices connected at once: ramp-up, memory per device, CPU per handshake.

Run: ``.venv/bin/python -m bench.bench_connections [--devices 5000] [--generators 2]
[--concurrency 64] [--hold 15]``

Set-up: ``--devices`` locks made by the factory step (real software SEs, certificates from the
device CA) and registered to one organisation in a fresh PostgreSQL schema; a private Mosquitto
with the generated configuration (a password per device, the ACL); the gateway runs in this
process. ``--generators`` separate processes each open their share of the SEs, then — all at
the same moment — connect every device with its own MQTT credentials and run the real
handshake (HELLO / WELCOME / CONFIRM, SM2 both ways), ``--concurrency`` devices in flight per
generator, and hold the sessions (MQTT keep-alive) for ``--hold`` seconds.

Reported: handshakes/s during ramp-up (overall and best second), time until every device is
online, gateway RSS before/after and per connected device, generator RSS per simulated device,
Mosquitto RSS per connection (``/proc/<pid>/status``), CPU per handshake in the gateway process
(and in Mosquitto and the generators, to show the split), and the database's view at the end
(``devices.online`` and ``device_sessions`` rows). Target (issue 3): ≥ 5,000 at once.

The embedded amqtt broker is not measured here: it is the single-process default for one
building (≈ 1,000 messages/s, docs/gateway.md), not a broker for thousands of connections.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import tracemalloc
from typing import Any

from anju.kit import aio
from bench.fleet import (
    Connected,
    bench_platform,
    connect_device,
    cpu_seconds,
    generator_stdin,
    load_average,
    open_secure_elements,
    private_mosquitto,
    provision,
    read_line,
    rss_mb,
    scratch_dir,
    settled_rss_mb,
    start_generator,
)

TARGET = 5000


# --- the load generator (separate processes) ---------------------------------------------------
async def generator() -> None:
    from anju.kit.crypto import SM2PublicKey

    spec, stdin = await generator_stdin()
    ca = SM2PublicKey.from_pem(spec["ca_pem"])
    rss_start = settled_rss_mb()
    elements = open_secure_elements(spec["devices"])
    rss_loaded = settled_rss_mb()
    print("loaded", f"{rss_start:.1f}", f"{rss_loaded:.1f}", flush=True)
    await stdin.readline()  # "go"
    slots = asyncio.Semaphore(spec["concurrency"])
    failures: list[str] = []

    async def one(d: dict[str, str], se: Any) -> Connected | None:
        async with slots:
            try:
                return await connect_device(d, se, ca, spec["host"], spec["port"], keepalive=120)
            except Exception as exc:
                failures.append(type(exc).__name__)
                return None

    start = time.monotonic()
    cpu0 = time.process_time()
    pairs = zip(spec["devices"], elements, strict=True)
    results = await asyncio.gather(*(one(d, se) for d, se in pairs))
    devices = [r for r in results if r is not None]
    seconds = time.monotonic() - start
    cpu = time.process_time() - cpu0
    print(
        "connected",
        len(devices),
        len(failures),
        f"{seconds:.3f}",
        f"{rss_loaded:.1f}",
        f"{settled_rss_mb():.1f}",
        f"{cpu:.3f}",
        flush=True,
    )
    await stdin.readline()  # "stop"
    dropped = sum(1 for d in devices if not d.client.is_connected)
    for d in devices:
        await d.client.disconnect()
    print("done", dropped, flush=True)


# --- the gateway side --------------------------------------------------------------------------
async def run(
    devices: int, generators: int, concurrency: int, hold: float, trace_memory: bool
) -> dict[str, Any]:
    from sqlalchemy import func, select

    from anju.devices.ca import ca_public_key_pem
    from anju.devices.models import Device
    from anju.gateway.models import DeviceSession
    from anju.gateway.options import GatewayOptions
    from anju.gateway.runner import Gateway

    tmp = scratch_dir("anju-bench-conn-")
    result: dict[str, Any] = {"devices": devices, "generators": generators}
    async with bench_platform(tmp) as platform:
        t = time.monotonic()
        fleet = await provision(platform, tmp, devices)
        result["provision_seconds"] = time.monotonic() - t
        async with private_mosquitto(platform, tmp / "mosquitto") as broker:
            gateway = Gateway(platform, broker.address, GatewayOptions())
            await gateway.start()
            shares = [fleet.devices[i::generators] for i in range(generators)]
            gens = []
            for share in shares:
                spec = {
                    "ca_pem": ca_public_key_pem(platform.keys),
                    "host": broker.address.host,
                    "port": broker.address.port,
                    "devices": share,
                    "concurrency": concurrency,
                }
                gens.append(await start_generator("bench.bench_connections", spec))
            loaded = [await read_line(g, 600) for g in gens]
            gen_rss_start = sum(float(words[1]) for words in loaded)
            await asyncio.sleep(1.0)
            rss0, broker_rss0 = settled_rss_mb(), rss_mb(broker.process.pid)
            if trace_memory:
                tracemalloc.start()
            broker_cpu0 = cpu_seconds(broker.process.pid)
            gen_cpu0 = sum(cpu_seconds(g.pid) for g in gens)
            counters = gateway.ingest.counters
            cpu0, t0 = time.process_time(), time.monotonic()
            for g in gens:
                assert g.stdin is not None
                g.stdin.write(b"go\n")
                await g.stdin.drain()
            per_second: list[int] = []
            last, next_tick = counters.handshakes, t0 + 1.0
            deadline = t0 + max(600.0, devices / 5)
            while len(gateway.ingest.held_devices()) < devices and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                if time.monotonic() >= next_tick:
                    per_second.append(counters.handshakes - last)
                    last, next_tick = counters.handshakes, next_tick + 1.0
            t_all = time.monotonic() - t0
            cpu_ramp = time.process_time() - cpu0
            broker_cpu = cpu_seconds(broker.process.pid) - broker_cpu0
            gen_cpu = sum(cpu_seconds(g.pid) for g in gens) - gen_cpu0
            reports = [await read_line(g, 600) for g in gens]
            await gateway.ingest.drain()
            await asyncio.sleep(hold)  # everyone holds the session (keep-alives only)
            held_after_hold = len(gateway.ingest.held_devices())
            async with platform.db.transaction() as session:
                online = await session.scalar(
                    select(func.count())
                    .select_from(Device)
                    .where(Device.org_id == fleet.org_id, Device.online.is_(True))
                )
                sessions = await session.scalar(select(func.count()).select_from(DeviceSession))
            rss1, broker_rss1 = settled_rss_mb(), rss_mb(broker.process.pid)
            traced = tracemalloc.get_traced_memory()[0] if trace_memory else None
            tracemalloc.stop()
            for g in gens:
                assert g.stdin is not None
                g.stdin.write(b"stop\n")
                await g.stdin.drain()
            dropped = sum([int((await read_line(g, 120))[1]) for g in gens])
            for g in gens:
                await g.wait()
            result.update(
                connected=sum(int(r[1]) for r in reports),
                failed=sum(int(r[2]) for r in reports),
                ramp_seconds=t_all,
                handshakes=counters.handshakes,
                best_second=max(per_second, default=0),
                gateway_cpu_us=cpu_ramp / max(counters.handshakes, 1) * 1e6,
                broker_cpu_us=broker_cpu / max(counters.handshakes, 1) * 1e6,
                generator_cpu_us=gen_cpu / max(counters.handshakes, 1) * 1e6,
                rss0=rss0,
                rss1=rss1,
                traced=traced,
                broker_rss0=broker_rss0,
                broker_rss1=broker_rss1,
                gen_rss_loaded=sum(float(r[4]) for r in reports),
                gen_rss_connected=sum(float(r[5]) for r in reports),
                gen_rss_start=gen_rss_start,
                held_after_hold=held_after_hold,
                online=online,
                sessions=sessions,
                dropped=dropped,
                rejected=dict(counters.rejected),
            )
            await gateway.stop()
    return result


def report(r: dict[str, Any]) -> None:
    n = r["devices"]
    print(
        f"devices: {n} (set-up {r['provision_seconds']:.0f} s: factory step, import, "
        f"registration), {r['generators']} generator processes",
        flush=True,
    )
    print(
        f"ramp-up: {r['connected']} connected, {r['failed']} failed, all {n} held by the gateway "
        f"after {r['ramp_seconds']:.1f} s → {r['handshakes'] / r['ramp_seconds']:.0f} "
        f"handshakes/s (best second {r['best_second']}); "
        f"x{r['connected'] / TARGET:.2f} of {TARGET} at once"
    )
    print(
        f"CPU per handshake: gateway {r['gateway_cpu_us']:.0f} µs, Mosquitto "
        f"{r['broker_cpu_us']:.0f} µs, generators {r['generator_cpu_us']:.0f} µs"
    )
    per = lambda before, after: (after - before) * 1024 / n  # noqa: E731  (KB per device)
    print(
        f"gateway RSS {r['rss0']:.1f} → {r['rss1']:.1f} MB = {per(r['rss0'], r['rss1']):.1f} KB "
        f"per connected device; Mosquitto RSS {r['broker_rss0']:.1f} → {r['broker_rss1']:.1f} MB "
        f"= {per(r['broker_rss0'], r['broker_rss1']):.1f} KB per connection; generators "
        f"{r['gen_rss_loaded']:.0f} → {r['gen_rss_connected']:.0f} MB = "
        f"{per(r['gen_rss_loaded'], r['gen_rss_connected']):.1f} KB per simulated device "
        f"(+{per(r['gen_rss_start'], r['gen_rss_loaded']):.1f} KB for its opened SE)"
    )
    if r["traced"] is not None:
        print(
            f"gateway Python heap kept since the ramp began (tracemalloc): "
            f"{r['traced'] / 1024 / n:.1f} KB per connected device — this run's CPU figures "
            "include tracemalloc's overhead and are not to be quoted"
        )
    print(
        f"after holding: {r['held_after_hold']} sessions held, {r['online']} devices online in "
        f"the database, {r['sessions']} device_sessions rows, {r['dropped']} MQTT connections "
        f"dropped" + (f", rejected {r['rejected']}" if r["rejected"] else ""),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=TARGET)
    parser.add_argument("--generators", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64, help="handshakes in flight each")
    parser.add_argument("--hold", type=float, default=15.0, help="seconds to hold the sessions")
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="also count the gateway's Python heap per device with tracemalloc (slows the ramp)",
    )
    args = parser.parse_args()
    if args.generator:
        aio.run(generator())
        return
    print(f"# {load_average()} before the run", flush=True)
    r = aio.run(run(args.devices, args.generators, args.concurrency, args.hold, args.trace_memory))
    report(r)
    print(f"# {load_average()} after the run", flush=True)


if __name__ == "__main__":
    main()
