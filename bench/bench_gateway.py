"""Gateway ingest: device events per second from MQTT into the database, CPU per event.

Run: ``.venv/bin/python -m bench.bench_gateway [--seconds 20] [--minutes 10]``

Two set-ups: (1) a private Mosquitto (the generated anju.conf, passwords, ACL) into PostgreSQL —
the production shape, target ≥ 5,000 events/s sustained on this 2-core machine; (2) the embedded
amqtt broker into SQLite (single-machine default; amqtt moves ~1k msg/s). The devices are a
separate load-generator process (``--generator``): real software SEs, real handshakes through
the gateway, then DATA frames sealed with each session's keys and published at ``--rate``.
The gateway runs in this process; its CPU time per stored event is what is reported.

``--minutes N`` runs set-up (1) as a soak: it samples the gateway's RSS every 10 s, prints it
every minute, and ends with a memory verdict — the least-squares slope of RSS (MB/min) after a
warm-up (the first 2 minutes, or the first fifth of a shorter soak): "flat" when it is below
``--max-growth`` MB/min (default 0.5, i.e. < 30 MB an hour), "GROWING" otherwise — and whether
the gateway kept up (nothing dropped from its bounded queue).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from anju.kit import aio
from bench.fleet import (
    bench_platform,
    connect_device,
    generator_stdin,
    load_average,
    now_ms,
    open_secure_elements,
    private_mosquitto,
    provision,
    read_line,
    rss_mb,
    scratch_dir,
    start_generator,
)

TARGET = 5000
SAMPLE_SECONDS = 10.0
WARM_UP_MINUTES = 2.0
MAX_GROWTH_MB_PER_MIN = 0.5


# --- the load generator (a separate process) ---------------------------------------------------
async def generator() -> None:
    from anju.kit.crypto import SM2PublicKey

    spec, _ = await generator_stdin()
    ca = SM2PublicKey.from_pem(spec["ca_pem"])
    elements = open_secure_elements(spec["devices"])
    devices = [
        await connect_device(d, se, ca, spec["host"], spec["port"])
        for d, se in zip(spec["devices"], elements, strict=True)
    ]
    await asyncio.sleep(1.0)  # let the gateway record the sessions
    print("ready", flush=True)
    rate, seconds = spec["rate"], spec["seconds"]
    sent = 0
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        owed = int(rate * elapsed) - sent  # catch up when behind, never run ahead
        for _ in range(min(owed, 200)):
            device = devices[sent % len(devices)]
            event = {
                "t": "evt",
                "id": f"b{sent}",
                "at": now_ms(),
                "kind": "door.unlock",
                "data": {"method": "passcode", "ok": True, "battery": 81},
            }
            device.client.publish(device.topic, device.channel.seal(event), qos=1)
            sent += 1
        await asyncio.sleep(0 if owed > 200 else 0.005)
    for device in devices:
        await device.client.disconnect()
    print(f"sent {sent} {time.monotonic() - start:.3f}", flush=True)


# --- the gateway side --------------------------------------------------------------------------
async def run(
    broker_kind: str, db_kind: str, devices: int, rate: int, seconds: float
) -> dict[str, Any]:
    from anju.gateway.broker import EmbeddedBroker

    tmp = scratch_dir("anju-bench-gw-")
    async with bench_platform(tmp, db_kind) as platform:
        fleet = await provision(platform, tmp, devices)
        if broker_kind == "mosquitto":
            async with private_mosquitto(platform, tmp / "mosquitto") as mosquitto:
                return await measure(platform, mosquitto.address, fleet, rate, seconds)
        broker = EmbeddedBroker(platform, port=0)
        await broker.start()
        try:
            return await measure(platform, broker.address, fleet, rate, seconds)
        finally:
            await broker.stop()


async def measure(
    platform: Any, address: Any, fleet: Any, rate: int, seconds: float
) -> dict[str, Any]:
    from anju.devices.ca import ca_public_key_pem
    from anju.gateway.runner import Gateway

    gateway = Gateway(platform, address)
    await gateway.start()
    spec = {
        "ca_pem": ca_public_key_pem(platform.keys),
        "host": address.host,
        "port": address.port,
        "devices": fleet.devices,
        "rate": rate,
        "seconds": seconds,
    }
    gen = await start_generator("bench.bench_gateway", spec)
    assert (await read_line(gen, 300))[0] == "ready"
    counters = gateway.ingest.counters
    stored0 = counters.events_stored
    cpu0, t0, rss0 = time.process_time(), time.monotonic(), rss_mb()
    samples: list[tuple[float, float]] = []  # (minutes since start, RSS MB)
    next_sample, next_print = t0 + SAMPLE_SECONDS, t0 + 60
    assert gen.stdout is not None
    reader = asyncio.ensure_future(gen.stdout.readline())
    while not reader.done():
        await asyncio.sleep(0.5)
        now = time.monotonic()
        if now >= next_sample:
            samples.append(((now - t0) / 60, rss_mb()))
            next_sample += SAMPLE_SECONDS
        if now >= next_print:
            print(
                f"  minute {round((now - t0) / 60)}: {counters.events_stored - stored0} events "
                f"stored, RSS {rss_mb():.1f} MB",
                flush=True,
            )
            next_print += 60
    sent = int(reader.result().split()[1])
    deadline = time.monotonic() + 60
    while counters.events_stored - stored0 < sent and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # the backlog drains into the database
    await gateway.ingest.drain()
    t1, cpu1 = time.monotonic(), time.process_time()
    stored = counters.events_stored - stored0
    await gen.wait()
    result = {
        "setup": f"{'embedded' if address.version == 3 else 'mosquitto'} → "
        f"{'sqlite' if platform.db.is_sqlite else 'postgres'}",
        "offered_rate": rate,
        "sent": sent,
        "stored": stored,
        "seconds": t1 - t0,
        "events_per_s": stored / (t1 - t0),
        "cpu_us_per_event": (cpu1 - cpu0) / max(stored, 1) * 1e6,
        "rss_start_mb": rss0,
        "rss_end_mb": rss_mb(),
        "rejected": dict(counters.rejected),
        "dropped": counters.events_dropped,
        "samples": samples,
    }
    await gateway.stop()
    return result


def memory_slope(samples: list[tuple[float, float]], warm_up: float) -> tuple[float, int]:
    """Least-squares slope (MB/min) of the RSS samples after ``warm_up`` minutes; how many."""
    points = [(m, rss) for m, rss in samples if m >= warm_up]
    if len(points) < 3:
        return float("nan"), len(points)
    mean_m = sum(m for m, _ in points) / len(points)
    mean_r = sum(r for _, r in points) / len(points)
    num = sum((m - mean_m) * (r - mean_r) for m, r in points)
    den = sum((m - mean_m) ** 2 for m, _ in points)
    return num / den, len(points)


def soak_verdict(r: dict[str, Any], minutes: float, max_growth: float) -> str:
    warm_up = min(WARM_UP_MINUTES, minutes / 5)
    slope, n = memory_slope(r["samples"], warm_up)
    if n < 3:
        return f"memory: too short to judge ({n} samples after a {warm_up:.1f} min warm-up)"
    after = [rss for m, rss in r["samples"] if m >= warm_up]
    verdict = "flat" if slope < max_growth else "GROWING"
    kept_up = "kept up" if not r["dropped"] and r["stored"] == r["sent"] else "FELL BEHIND"
    return (
        f"memory after a {warm_up:.1f} min warm-up: RSS {min(after):.1f}–{max(after):.1f} MB, "
        f"slope {slope:+.2f} MB/min ({slope * 60:+.0f} MB/h) from {n} samples → {verdict} "
        f"(threshold {max_growth} MB/min); ingest {kept_up} "
        f"({r['stored']} of {r['sent']} stored, {r['dropped']} dropped)"
    )


def report(r: dict[str, Any], target: float) -> None:
    print(
        f"{r['setup']}: offered {r['offered_rate']}/s, sent {r['sent']}, stored {r['stored']} in "
        f"{r['seconds']:.1f} s → {r['events_per_s']:.0f} events/s "
        f"(x{r['events_per_s'] / target:.2f} of {target:.0f}/s), "
        f"gateway CPU {r['cpu_us_per_event']:.0f} µs/event, "
        f"RSS {r['rss_start_mb']:.0f} → {r['rss_end_mb']:.0f} MB"
        + (f", rejected {r['rejected']}" if r["rejected"] else "")
        + (f", dropped {r['dropped']}" if r["dropped"] else ""),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--minutes", type=float, default=0.0, help="soak: Mosquitto → PostgreSQL")
    parser.add_argument("--max-growth", type=float, default=MAX_GROWTH_MB_PER_MIN)
    parser.add_argument("--rate", type=int, default=6000)
    parser.add_argument("--embedded-rate", type=int, default=1000)
    parser.add_argument("--devices", type=int, default=20)
    args = parser.parse_args()
    if args.generator:
        aio.run(generator())
        return
    print(f"# {load_average()} before the run", flush=True)
    if args.minutes:
        r = aio.run(run("mosquitto", "postgres", args.devices, args.rate, args.minutes * 60))
        report(r, TARGET)
        print(soak_verdict(r, args.minutes, args.max_growth), flush=True)
    else:
        r = aio.run(run("mosquitto", "postgres", args.devices, args.rate, args.seconds))
        report(r, TARGET)
        embedded_seconds = min(args.seconds, 10.0)
        r = aio.run(run("embedded", "sqlite", args.devices, args.embedded_rate, embedded_seconds))
        report(r, 1000)
    print(f"# {load_average()} after the run", flush=True)


if __name__ == "__main__":
    main()
