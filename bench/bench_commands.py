"""Command round trip, API → device ack: p50 / p95 / p99 at a steady rate of HTTP commands.

Run: ``.venv/bin/python -m bench.bench_commands [--rate 100] [--seconds 30] [--devices 200]``

The platform process is what ``anju serve`` runs: uvicorn serving the HTTP API (a real TCP
port, in this process) and the gateway, on PostgreSQL (a fresh schema) behind a private
Mosquitto. A separate load-generator process holds ``--devices`` connected devices (real SEs
and handshakes; each device acks every command the moment it arrives) and, as a security
administrator signed in with a verified second factor, POSTs ``/api/v1/devices/{id}/commands``
at ``--rate`` per second, round-robin over the devices, for ``--seconds``.

The round trip of each command is read from the database afterwards:
``device_commands.acked_at − created_at``. Both come from the platform's clock: ``created_at``
is set inside the POST's transaction (just before it commits and the response is sent),
``acked_at`` when the gateway records the device's ack (just before that commit). So the
figure covers the rest of the POST's transaction, waking the dispatcher, marking the command
sent, sealing, Mosquitto both ways, the device, and recording the ack — with no clock skew
between processes and no polling. The generator also reports what it saw: the POST's own
duration, and from sending the POST to the command arriving at the device (one clock).
Target (issue 3): p99 < 100 ms at 100 commands/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from bench.fleet import (
    Connected,
    against_target,
    bench_platform,
    connect_device,
    generator_main,
    generator_stdin,
    open_secure_elements,
    percentiles,
    private_mosquitto,
    profiled,
    provision,
    read_line,
    scratch_dir,
    served,
    start_generator,
)
from bench.rawhttp import Error as HTTP_ERRORS
from bench.rawhttp import RawHttpClient

TARGET_P99_MS = 100.0
SETTLE_SECONDS = 5.0  # after the last POST, for the last acks


# --- the load generator (a separate process) ---------------------------------------------------
async def generator() -> None:
    from anju.kit.crypto import SM2PublicKey

    spec, _ = await generator_stdin()
    ca = SM2PublicKey.from_pem(spec["ca_pem"])
    arrived: dict[str, float] = {}  # command id → when the device had it (monotonic)

    def on_command(device: Connected, frame: bytes) -> None:
        message = device.channel.open(frame)
        if message.get("t") == "cmd":
            arrived.setdefault(message["id"], time.monotonic())
            ack = {"t": "ack", "id": message["id"], "ok": True, "code": None}
            device.client.publish(device.topic, device.channel.seal(ack), qos=1)

    elements = open_secure_elements(spec["devices"])
    devices = [
        await connect_device(d, se, ca, spec["host"], spec["port"], on_message=on_command)
        for d, se in zip(spec["devices"], elements, strict=True)
    ]
    await asyncio.sleep(1.0)  # let the gateway record the sessions
    print("ready", flush=True)

    rate, seconds = spec["rate"], spec["seconds"]
    posted: dict[str, float] = {}  # command id → when its POST was sent
    http_ms: list[float] = []
    errors: list[str] = []
    tasks: set[asyncio.Task[None]] = set()
    headers = {"Authorization": f"Bearer {spec['token']}"}
    client = RawHttpClient(spec["api"], headers)  # httpx would saturate this process first
    try:

        async def post(device_id: str) -> None:
            sent = time.monotonic()
            try:
                status, body = await client.post_json(
                    f"/api/v1/devices/{device_id}/commands", {"name": "unlock"}
                )
            except HTTP_ERRORS as exc:  # overloaded: counted, the run goes on
                errors.append(type(exc).__name__)
                return
            http_ms.append((time.monotonic() - sent) * 1000)
            if status != 201:
                errors.append(str(status))
                return
            posted[json.loads(body)["id"]] = sent

        start = time.monotonic()
        count = 0
        while (elapsed := time.monotonic() - start) < seconds:
            for _ in range(int(rate * elapsed) - count):  # catch up when behind, never ahead
                task = asyncio.create_task(post(devices[count % len(devices)].device_id))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                count += 1
            await asyncio.sleep(0.002)
        while tasks:
            await asyncio.gather(*list(tasks))
        offered_seconds = time.monotonic() - start
    finally:
        await client.aclose()
    await asyncio.sleep(SETTLE_SECONDS)
    delivered = [(arrived[c] - sent) * 1000 for c, sent in posted.items() if c in arrived]
    for device in devices:
        await device.client.disconnect()
    summary = {
        "posted": count,
        "created": len(posted),
        "errors": errors,
        "offered_seconds": offered_seconds,
        "http_ms": percentiles(http_ms),
        "post_to_device_ms": percentiles(delivered),
        "arrived": len(delivered),
    }
    print("done", json.dumps(summary), flush=True)


# --- the platform side -------------------------------------------------------------------------
async def run(
    devices: int, rate: int, seconds: float, profile: str | None = None
) -> dict[str, Any]:
    from sqlalchemy import select
    from tests.support.accounts import make_admin

    from anju.devices.ca import ca_public_key_pem
    from anju.devices.command_models import DeviceCommand

    tmp = scratch_dir("anju-bench-cmd-")
    async with bench_platform(tmp, second_factor_window_seconds=3600) as platform:
        admin = await make_admin(platform, login="bench-admin", org="bench org")
        fleet = await provision(platform, tmp, devices, org_id=admin.org_id)
        async with (
            private_mosquitto(platform, tmp / "mosquitto") as broker,
            served(platform, broker) as (gateway, api),
        ):
            spec = {
                "ca_pem": ca_public_key_pem(platform.keys),
                "host": broker.address.host,
                "port": broker.address.port,
                "devices": fleet.devices,
                "api": api,
                "token": admin.token,
                "rate": rate,
                "seconds": seconds,
            }
            gen = await start_generator("bench.bench_commands", spec)
            assert (await read_line(gen, 600))[0] == "ready"
            passes0 = gateway.dispatcher.full_passes
            with profiled(profile):
                cpu0 = time.process_time()
                words = await read_line(gen, seconds + 300)
                cpu = time.process_time() - cpu0
            assert words[0] == "done", words
            client = json.loads(" ".join(words[1:]))
            await gen.wait()
            full_passes = gateway.dispatcher.full_passes - passes0
        async with platform.db.transaction() as session:
            rows = (
                await session.execute(
                    select(
                        DeviceCommand.status,
                        DeviceCommand.created_at,
                        DeviceCommand.sent_at,
                        DeviceCommand.acked_at,
                    ).where(DeviceCommand.org_id == admin.org_id)
                )
            ).all()
    round_trips = [
        (r.acked_at - r.created_at).total_seconds() * 1000 for r in rows if r.acked_at is not None
    ]
    to_sent = [
        (r.sent_at - r.created_at).total_seconds() * 1000 for r in rows if r.sent_at is not None
    ]
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {
        "devices": devices,
        "rate": rate,
        "seconds": seconds,
        "client": client,
        "commands": len(rows),
        "statuses": statuses,
        "round_trip_ms": percentiles(round_trips),
        "to_sent_ms": percentiles(to_sent),
        "cpu_us_per_command": cpu / max(len(rows), 1) * 1e6,
        "full_passes": full_passes,
    }


def report(r: dict[str, Any]) -> None:
    c = r["client"]
    rt, http, seen = r["round_trip_ms"], c["http_ms"], c["post_to_device_ms"]
    achieved = c["created"] / c["offered_seconds"]
    print(
        f"{r['devices']} devices, offered {r['rate']}/s for {r['seconds']:.0f} s: {c['posted']} "
        f"POSTs, {c['created']} created ({achieved:.1f}/s)"
        + (f", {len(c['errors'])} failed {sorted(set(c['errors']))}" if c["errors"] else "")
        + f"; statuses {r['statuses']}",
        flush=True,
    )
    print(against_target("round trip created_at → acked_at (platform clock)", rt, TARGET_P99_MS))
    print(
        f"generator's view: POST p50 {http['p50']:.1f} / p99 {http['p99']:.1f} ms; POST sent → "
        f"command at the device p50 {seen['p50']:.1f} / p99 {seen['p99']:.1f} ms "
        f"({c['arrived']} arrived)"
    )
    sent = r["to_sent_ms"]
    print(
        f"created_at → marked sent: p50 {sent['p50']:.1f} / p99 {sent['p99']:.1f} ms (woken by "
        f"the commit; {r['full_passes']} full passes of the 1 s poll meanwhile); platform "
        f"process CPU (HTTP + gateway): {r['cpu_us_per_command']:.0f} µs per command",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--devices", type=int, default=200)
    generator_main(
        parser,
        generator,
        lambda args: run(args.devices, args.rate, args.seconds, args.profile),
        report,
    )


if __name__ == "__main__":
    main()
