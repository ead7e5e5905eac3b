"""Gateway ingest: device events per second from MQTT into the database, CPU per event.

Run: ``.venv/bin/python -m bench.bench_gateway [--seconds 20] [--minutes 10]``

Two set-ups: (1) a private Mosquitto (the generated anju.conf, passwords, ACL) into PostgreSQL —
the production shape, target ≥ 5,000 events/s sustained on this 2-core machine; (2) the embedded
amqtt broker into SQLite (single-machine default; amqtt moves ~1k msg/s). The devices are a
separate load-generator process (``--generator``): real software SEs, real handshakes through
the gateway, then DATA frames sealed with each session's keys and published at ``--rate``.
The gateway runs in this process; its CPU time per stored event is what is reported.
``--minutes N`` runs set-up (1) as a soak and prints memory every minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET = 5000
POSTGRES_URL = os.environ.get(
    "ANJU_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
PIN = b"bench-pin-1234"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- the load generator (a separate process) ---------------------------------------------------
async def generator(spec: dict[str, Any]) -> None:
    import gmqtt
    from gmqtt.mqtt.constants import MQTTv311

    from anju.device.secure_element import SoftwareSecureElement
    from anju.kit.crypto import SM2PublicKey
    from anju.protocol.certificates import Certificate
    from anju.protocol.handshake import DeviceHandshake
    from anju.protocol.keys import MQTT_PASSWORD_LABEL
    from anju.protocol.topics import down_topic, session_up_topic, up_topic

    ca = SM2PublicKey.from_pem(spec["ca_pem"])
    now_ms = lambda: time.time_ns() // 1_000_000  # noqa: E731
    devices = []
    for d in spec["devices"]:
        se = SoftwareSecureElement.open(Path(d["se_dir"]))
        se.verify_pin(PIN)
        inbox: asyncio.Queue[bytes] = asyncio.Queue()
        client = gmqtt.Client(d["device_id"], clean_session=True)
        client.set_auth_credentials(
            d["device_id"], se.hmac(MQTT_PASSWORD_LABEL, bytes.fromhex(d["device_id"])).hex()
        )
        client.on_message = lambda c, t, p, q, props, box=inbox: box.put_nowait(p) or 0
        await client.connect(spec["host"], spec["port"], version=MQTTv311, keepalive=60)
        client.subscribe(down_topic(d["device_id"]), qos=1)
        await asyncio.sleep(0.05)
        cert = Certificate.decode(bytes.fromhex(d["certificate"]))
        hs = DeviceHandshake(d["device_id"], cert, se, ca, now_ms=now_ms)
        client.publish(up_topic(d["device_id"]), hs.hello(), qos=1)
        channel, confirm = hs.on_welcome(await asyncio.wait_for(inbox.get(), 30))
        topic = session_up_topic(d["device_id"], int.from_bytes(channel.session_id[:2], "big"))
        client.publish(topic, confirm, qos=1)
        client.on_message = lambda *_: 0  # evt_acks: received (the gateway paid for them), dropped
        devices.append((d["device_id"], client, channel, topic))
    await asyncio.sleep(1.0)  # let the gateway record the sessions
    print("ready", flush=True)
    rate, seconds = spec["rate"], spec["seconds"]
    sent = 0
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        owed = int(rate * elapsed) - sent  # catch up when behind, never run ahead
        for _ in range(min(owed, 200)):
            _, client, channel, topic = devices[sent % len(devices)]
            event = {
                "t": "evt",
                "id": f"b{sent}",
                "at": now_ms(),
                "kind": "door.unlock",
                "data": {"method": "passcode", "ok": True, "battery": 81},
            }
            client.publish(topic, channel.seal(event), qos=1)
            sent += 1
        await asyncio.sleep(0 if owed > 200 else 0.005)
    for _, client, _, _ in devices:
        await client.disconnect()
    print(f"sent {sent} {time.monotonic() - start:.3f}", flush=True)


# --- the gateway side --------------------------------------------------------------------------
async def run(
    broker_kind: str, db_kind: str, devices: int, rate: int, seconds: float
) -> dict[str, Any]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from anju.accounts.service import AccountService
    from anju.db import Database
    from anju.device.secure_element import SoftwareSecureElement
    from anju.devices.ca import ca_public_key_pem
    from anju.devices.provisioning import FactoryRecord, ProvisioningService
    from anju.gateway.broker import EmbeddedBroker
    from anju.gateway.client import BrokerAddress
    from anju.gateway.mosquitto import write_mosquitto_files
    from anju.gateway.options import GatewayOptions
    from anju.gateway.runner import Gateway
    from anju.kit.crypto import random_bytes
    from anju.migrations import upgrade
    from anju.platform import Platform, open_key_provider
    from anju.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="anju-bench-gw-"))
    schema = None
    if db_kind == "postgres":
        schema = f"anju_bench_{secrets.token_hex(4)}"
        admin = create_async_engine(POSTGRES_URL)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{POSTGRES_URL}?search_path={schema}"
    else:
        url = f"sqlite+aiosqlite:///{tmp / 'anju.db'}"
    settings = Settings(data_dir=tmp / "data", database_url=url)
    settings.data_dir.mkdir(parents=True)
    keys = open_key_provider(settings, create=True)
    db = Database(url)
    await upgrade(db)
    platform = Platform(settings=settings, db=db, keys=keys)
    specs = []
    async with db.transaction() as session:
        org = await AccountService(platform, session).create_organisation(
            f"bench {secrets.token_hex(3)}", "other", actor="cli"
        )
        svc = ProvisioningService(platform, session)
        await svc.product_for_manufacture("lock-x1", "lock")
        records = []
        for _ in range(devices):
            device_id = random_bytes(16).hex()
            se_dir = tmp / "se" / device_id
            _, record = SoftwareSecureElement.manufacture(se_dir, device_id=device_id, pin=PIN)
            records.append(
                FactoryRecord(record.device_id, record.se_id, record.public_key, record.root_key)
            )
            specs.append({"device_id": device_id, "se_dir": str(se_dir)})
        rows = await svc.import_factory_records("lock-x1", records)
        for spec, row in zip(specs, rows, strict=True):
            spec["certificate"] = row.certificate.hex()
            await svc.register_device_as_operator(row.id, org.id)

    process: asyncio.subprocess.Process | None = None
    broker = None
    if broker_kind == "mosquitto":
        import getpass
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        files = await write_mosquitto_files(
            platform, tmp / "mosquitto", port=port, persistence=False, user=getpass.getuser()
        )
        process = await asyncio.create_subprocess_exec(
            "mosquitto", "-c", str(files.config), stderr=asyncio.subprocess.DEVNULL
        )
        await asyncio.sleep(0.5)
        address = BrokerAddress("127.0.0.1", port, version=5)
    else:
        broker = EmbeddedBroker(platform, port=0)
        await broker.start()
        address = broker.address
    gateway = Gateway(platform, address, GatewayOptions())
    await gateway.start()
    spec = {
        "ca_pem": ca_public_key_pem(keys),
        "host": address.host,
        "port": address.port,
        "devices": specs,
        "rate": rate,
        "seconds": seconds,
    }
    gen = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bench_gateway",
        "--generator",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert gen.stdin is not None
    assert gen.stdout is not None
    gen.stdin.write(json.dumps(spec).encode())
    gen.stdin.close()
    line = await asyncio.wait_for(gen.stdout.readline(), 120)
    assert line.startswith(b"ready"), line
    counters = gateway.ingest.counters
    stored0 = counters.events_stored
    cpu0, t0, rss0 = time.process_time(), time.monotonic(), rss_mb()
    samples = []
    next_sample = t0 + 60
    done_line = b""
    reader = asyncio.ensure_future(gen.stdout.readline())
    while not reader.done():
        await asyncio.sleep(0.5)
        if time.monotonic() >= next_sample:
            samples.append(
                (round((time.monotonic() - t0) / 60), counters.events_stored - stored0, rss_mb())
            )
            print(
                f"  minute {samples[-1][0]}: {samples[-1][1]} events stored, "
                f"RSS {samples[-1][2]:.1f} MB",
                flush=True,
            )
            next_sample += 60
    done_line = reader.result()
    sent = int(done_line.split()[1])
    deadline = time.monotonic() + 60
    while counters.events_stored - stored0 < sent and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # the backlog drains into the database
    await gateway.ingest.drain()
    t1, cpu1 = time.monotonic(), time.process_time()
    stored = counters.events_stored - stored0
    await gen.wait()
    result = {
        "setup": f"{broker_kind} → {db_kind}",
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
    if broker is not None:
        await broker.stop()
    if process is not None:
        process.terminate()
        await process.wait()
    await db.dispose()
    if schema is not None:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()
    return result


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
    parser.add_argument("--rate", type=int, default=6000)
    parser.add_argument("--embedded-rate", type=int, default=1000)
    parser.add_argument("--devices", type=int, default=20)
    args = parser.parse_args()
    if args.generator:
        asyncio.run(generator(json.loads(sys.stdin.read())))
        return
    if args.minutes:
        r = asyncio.run(run("mosquitto", "postgres", args.devices, args.rate, args.minutes * 60))
        report(r, TARGET)
        return
    report(asyncio.run(run("mosquitto", "postgres", args.devices, args.rate, args.seconds)), TARGET)
    embedded_seconds = min(args.seconds, 10.0)
    r = asyncio.run(run("embedded", "sqlite", args.devices, args.embedded_rate, embedded_seconds))
    report(r, 1000)


if __name__ == "__main__":
    main()
