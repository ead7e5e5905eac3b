"""Credential push and freeze propagation: API → lock → signed receipt, p50 / p99.

Run: ``.venv/bin/python -m bench.bench_access [--locks 1000] [--rate 50] [--seconds 30]
[--freezes 100] [--freeze-rate 10] [--processes 1]``

The platform process is what ``anju serve`` runs (HTTP API + gateway, PostgreSQL in a fresh schema,
a private Mosquitto); ``--processes N`` runs N of them, the generator sending requests to each in
turn (:func:`bench.fleet.platform_processes`). ``--locks`` locks are provisioned and each gets one
guest grant (not measured). A separate generator process connects every lock (real SEs and
handshakes) and acts as their firmware for access commands: ``access.put`` — open the box in the SE
(SM2 decrypt, signer certificate → CA, signature), then send the SE-signed ``access.receipt`` and
the ack; ``access.freeze`` — a signed ``applied`` receipt and the ack. It then, as a property
manager with a verified second factor,

1. POSTs a passcode credential (``/api/v1/access/grants/{id}/credentials``) at ``--rate`` per
   second for ``--seconds``, round-robin over the grants (each on one lock);
2. freezes ``--freezes`` people (``/api/v1/access/freezes``) at ``--freeze-rate`` per second.

Both figures come from the platform's clock, read from the database afterwards: a push is
``access_deliveries.confirmed_at − queued_at`` (queued inside the POST's transaction; confirmed
when the lock's signed receipt is verified and applied); a freeze is
``access_lock_operations.confirmed_at − created_at``. Targets (issue 4): push p99 < 150 ms at 50/s
with 1,000 connected locks; freeze p99 < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from bench.fleet import (
    Connected,
    SteppingClock,
    add_processes_option,
    add_warmup_option,
    against_target,
    audit_appends,
    bench_platform,
    connect_device,
    generator_main,
    generator_stdin,
    locks_spec,
    measured_generator,
    now_ms,
    open_secure_elements,
    percentiles,
    platform_processes,
    private_mosquitto,
    provision,
    scratch_dir,
)
from bench.rawhttp import Balanced
from bench.rawhttp import Error as HTTP_ERRORS

PUSH_TARGET_P99_MS = 150.0
FREEZE_TARGET_P99_MS = 1000.0
SETTLE_SECONDS = 5.0


# --- the generator: the locks and the operator (a separate process) ----------------------------
class AccessLocks:
    """The locks' side of access commands, with the protocol functions a lock maker uses."""

    def __init__(self, ca: Any, elements: dict[str, Any]) -> None:
        self.ca = ca
        self.elements = elements
        self.events = 0
        self.refused: list[str] = []

    def on_command(self, device: Connected, frame: bytes) -> None:
        from anju.protocol.access import (
            FREEZE_COMMAND,
            PUT_COMMAND,
            RECEIPT_EVENT,
            decode_signer,
            open_credential,
            sign_record,
        )
        from anju.protocol.errors import ProtocolError

        message = device.channel.open(frame)
        if message.get("t") != "cmd":
            return
        se = self.elements[device.device_id]
        name, args = message["name"], message["args"]
        record: dict[str, Any] = {
            "dev": device.device_id,
            "at": now_ms(),
            "cmd": message["id"],
            "cred": None,
            "subject": None,
            "code": None,
        }
        ok = True
        if name == PUT_COMMAND:
            try:
                credential = open_credential(
                    args["box"],
                    device_id=device.device_id,
                    cred_id=args["cred"],
                    decrypt=se.decrypt,
                    signer=decode_signer(args["cert"]),
                    ca=self.ca,
                    now_s=int(time.time()),
                )
                record |= {
                    "op": "put",
                    "cred": credential.cred,
                    "subject": credential.subject,
                    "state": "installed",
                }
            except ProtocolError as exc:
                ok = False
                self.refused.append(exc.code)
                record |= {"op": "put", "cred": args.get("cred"), "state": "refused"}
                record["code"] = "malformed"
        elif name == FREEZE_COMMAND:
            record |= {"op": "freeze", "subject": args["subject"], "state": "applied"}
        else:
            record = {}
        if record:
            self.events += 1
            event = {
                "t": "evt",
                "id": f"r{self.events}",
                "at": record["at"],
                "kind": RECEIPT_EVENT,
                "data": sign_record(record, sign=se.sign),
            }
            device.client.publish(device.topic, device.channel.seal(event), qos=1)
        ack = {"t": "ack", "id": message["id"], "ok": ok, "code": None if ok else "malformed"}
        device.client.publish(device.topic, device.channel.seal(ack), qos=1)


async def paced(
    rate: float,
    count: int,
    call: Any,
    *,
    at: int = -1,
    then: Callable[[], None] = lambda: None,
) -> None:
    """Start ``call(i)`` for i in 0..count-1 at ``rate`` per second; wait for all. ``then()``
    runs just before call ``at`` starts."""
    tasks: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    started = 0
    while started < count:
        due = min(count, int(rate * (time.monotonic() - start)) + 1)
        for _ in range(due - started):  # catch up when behind, never ahead
            if started == at:
                then()
            task = asyncio.create_task(call(started))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            started += 1
        await asyncio.sleep(0.002)
    while tasks:
        await asyncio.gather(*list(tasks))


async def access_locks_ready() -> tuple[dict[str, Any], AccessLocks, list[Connected]]:
    """The generator's start: read the spec, connect every lock acting as its firmware for
    access commands, and say ``ready`` once the gateway holds their sessions."""
    from anju.kit.crypto import SM2PublicKey

    spec, _ = await generator_stdin()
    ca = SM2PublicKey.from_pem(spec["ca_pem"])
    elements = open_secure_elements(spec["devices"])
    by_id = {d["device_id"]: se for d, se in zip(spec["devices"], elements, strict=True)}
    locks = AccessLocks(ca, by_id)
    devices = [
        await connect_device(d, se, ca, spec["host"], spec["port"], on_message=locks.on_command)
        for d, se in zip(spec["devices"], elements, strict=True)
    ]
    await asyncio.sleep(1.0)  # let the gateway record the sessions
    print("ready", flush=True)
    return spec, locks, devices


async def generator() -> None:
    spec, locks, devices = await access_locks_ready()

    errors: list[str] = []
    http_ms: list[float] = []
    grants, subjects = spec["grants"], spec["subjects"]
    # httpx would saturate this process before the platform (bench/rawhttp.py).
    client = Balanced(spec["apis"], {"Authorization": f"Bearer {spec['token']}"})
    try:
        measured_from = [float("inf")]  # requests sent before are the warm-up

        def measuring() -> None:
            measured_from[0] = time.monotonic()
            print("measuring", flush=True)  # the platform side's figures start here

        async def post(path: str, body: dict[str, Any]) -> None:
            sent = time.monotonic()
            try:
                status, answer = await client.post_json(path, body)
            except HTTP_ERRORS as exc:
                errors.append(type(exc).__name__)
                return
            if sent >= measured_from[0]:
                http_ms.append((time.monotonic() - sent) * 1000)
            if status != 201:
                errors.append(f"{status} {answer[:120].decode(errors='replace')}")

        async def push(i: int) -> None:
            grant = grants[i % len(grants)]
            await post(f"/api/v1/access/grants/{grant}/credentials", {"kind": "passcode"})

        async def freeze(i: int) -> None:
            await post("/api/v1/access/freezes", {"subject_id": subjects[i], "reason": "arrears"})

        # One steady stream of pushes: the warm-up (the platform's first seconds under load,
        # reported apart), then the measured ones.
        warm = int(spec["rate"] * spec["warmup"])
        pushes = int(spec["rate"] * spec["seconds"])
        await paced(spec["rate"], warm + pushes, push, at=warm, then=measuring)
        push_seconds = time.monotonic() - measured_from[0]
        await asyncio.sleep(SETTLE_SECONDS)
        await paced(spec["freeze_rate"], spec["freezes"], freeze)
    finally:
        await client.aclose()
    await asyncio.sleep(SETTLE_SECONDS)
    for device in devices:
        await device.client.disconnect()
    summary = {
        "pushes": pushes,
        "push_seconds": push_seconds,
        "errors": errors[:20],
        "error_count": len(errors),
        "http_ms": percentiles(http_ms),
        "refused": locks.refused[:20],
    }
    print("done", json.dumps(summary), flush=True)


# --- the platform side -------------------------------------------------------------------------
async def prepare(platform: Any, fleet: Any, admin: Any) -> tuple[str, list[str], list[str]]:
    """A property manager with a second factor, and one guest grant per lock (not measured)."""
    from datetime import timedelta

    from tests.support.access import manager

    from anju.access.grants import DoorSelector, GrantService, GrantSpec

    staff = await manager(platform, platform.clock, admin, "bench-manager")
    grants, subjects = [], []
    until = platform.clock.now() + timedelta(days=2)
    for start in range(0, len(fleet.devices), 200):
        async with platform.db.transaction() as session:
            service = GrantService(platform, session)
            for i, device in enumerate(fleet.devices[start : start + 200], start):
                subject = f"bench-guest-{i}"
                spec = GrantSpec(
                    subject, "guest", DoorSelector((device["device_id"],)), valid_until=until
                )
                grant, _ = await service.create(f"account:{staff.account_id}", fleet.org_id, spec)
                grants.append(grant.id)
                subjects.append(subject)
    return staff.token, grants, subjects


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import select
    from tests.support.accounts import make_admin

    from anju.access.models import AccessDelivery, AccessLockOperation

    tmp = scratch_dir("anju-bench-access-")
    clock = SteppingClock()
    async with bench_platform(tmp, clock=clock, second_factor_window_seconds=3600) as platform:
        admin = await make_admin(platform, login="bench-admin", org="bench org")
        fleet = await provision(platform, tmp, args.locks, org_id=admin.org_id)
        token, grants, subjects = await prepare(platform, fleet, admin)
        async with (
            private_mosquitto(platform, tmp / "mosquitto") as broker,
            platform_processes(platform, broker, args.processes) as (_gateway, apis, others),
        ):
            spec = locks_spec(platform, broker, fleet, apis, token) | {
                "grants": grants,
                "subjects": subjects[: args.freezes],
                "rate": args.rate,
                "seconds": args.seconds,
                "freezes": min(args.freezes, len(subjects)),
                "freeze_rate": args.freeze_rate,
                "warmup": args.warmup,
            }
            client, cpu, measured_from = await measured_generator(
                "bench.bench_access",
                spec,
                args.profile,
                args.warmup + args.seconds + 600,
                others,
                platform.clock.now,
            )
        audit = audit_appends(platform)
        async with platform.db.transaction() as session:
            deliveries = (
                await session.execute(
                    select(
                        AccessDelivery.state, AccessDelivery.queued_at, AccessDelivery.confirmed_at
                    )
                )
            ).all()
            operations = (
                await session.execute(
                    select(
                        AccessLockOperation.state,
                        AccessLockOperation.created_at,
                        AccessLockOperation.confirmed_at,
                    ).where(AccessLockOperation.op == "freeze")
                )
            ).all()

    def spans(rows: list[Any], start: str) -> list[float]:
        return [
            (r.confirmed_at - getattr(r, start)).total_seconds() * 1000
            for r in rows
            if r.confirmed_at is not None
        ]

    assert measured_from is not None
    warm = [r for r in deliveries if r.queued_at < measured_from]
    deliveries = [r for r in deliveries if r.queued_at >= measured_from]
    states: dict[str, int] = {}
    for r in deliveries:
        states[r.state] = states.get(r.state, 0) + 1
    return {
        "args": vars(args),
        "client": client,
        "deliveries": len(deliveries),
        "states": states,
        "push_ms": percentiles(spans(deliveries, "queued_at")),
        "warmup_pushes": len(warm),
        "warmup_push_ms": percentiles(spans(warm, "queued_at")),
        "freezes": len(operations),
        "freezes_confirmed": sum(1 for r in operations if r.confirmed_at is not None),
        "freeze_ms": percentiles(spans(operations, "created_at")),
        "cpu_ms_per_request": cpu / max(1, len(deliveries) + len(operations)) * 1000,
        "audit": audit,
    }


def report(r: dict[str, Any]) -> None:
    a, c, push, freeze = r["args"], r["client"], r["push_ms"], r["freeze_ms"]
    print(
        f"{a['locks']} locks; pushes offered {a['rate']}/s for {a['seconds']:.0f} s: "
        f"{c['pushes']} POSTs in {c['push_seconds']:.1f} s, {r['deliveries']} deliveries "
        f"{r['states']}; {c['error_count']} HTTP errors {c['errors'][:3]}; refused by locks "
        f"{c['refused'][:3]}",
        flush=True,
    )
    print(against_target("push queued → lock's signed receipt applied", push, PUSH_TARGET_P99_MS))
    cold = r["warmup_push_ms"]
    if r["warmup_pushes"]:
        print(
            f"the first {a['warmup']:.0f} s under load, not in the figures above (cold start: "
            f"{r['warmup_pushes']} pushes): p50 {cold['p50']:.1f} / p99 {cold['p99']:.1f} / "
            f"max {cold['max']:.1f} ms"
        )
    confirmed = f"{r['freezes_confirmed']}/{r['freezes']} confirmed"
    print(against_target(f"freeze → lock's receipt ({confirmed})", freeze, FREEZE_TARGET_P99_MS))
    print(
        f"HTTP p50 {c['http_ms']['p50']:.1f} / p99 {c['http_ms']['p99']:.1f} ms; platform CPU "
        f"({a['processes']} process{'es' if a['processes'] > 1 else ''}) "
        f"{r['cpu_ms_per_request']:.1f} ms per push or freeze (HTTP + gateway)",
        flush=True,
    )
    print(r["audit"], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--locks", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--freezes", type=int, default=100)
    parser.add_argument("--freeze-rate", type=float, default=10.0)
    add_warmup_option(parser)
    add_processes_option(parser)
    generator_main(parser, generator, run, report)


if __name__ == "__main__":
    main()
