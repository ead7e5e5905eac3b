"""Check-in latency with concurrent check-ins: front desk → API → locks, p50 / p99.

Run: ``.venv/bin/python -m bench.bench_checkin [--concurrency 20] [--rounds 5] [--db postgres]``

The platform process is what ``anju serve`` runs (HTTP API + gateway; PostgreSQL in a fresh
schema or SQLite; a private Mosquitto). Set-up (not measured): a hotel with ``--concurrency``
rooms, each with its lock, and an entrance in the site's door group; the hotel's notices; for
every round and room a booking of two guests who consented and were registered at the desk.
A separate generator process connects every lock (real SEs and handshakes) and acts as their
firmware for ``access.put`` (SM2-open the sealed credential, verify the signer, send the
SE-signed receipt). Then, as a front-desk clerk, it checks ``--concurrency`` bookings in at
once (``POST /api/v1/stays/{id}/check-in``: consent and verification of both guests, two guest
grants on the room lock and the entrance, a passcode each and an eKey for one, two regulator
reports queued — one transaction), waits for the round to finish, and repeats ``--rounds``
times. Face capture is not part of it (it happens before, at registration).

Figures: the check-in request's latency as the desk sees it (HTTP round trip), and — from the
platform's clock — the time until each credential is installed on its lock
(``access_deliveries.confirmed_at − queued_at``, confirmed by the lock's signed receipt).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import timedelta
from typing import Any

from bench.bench_access import access_locks_ready
from bench.fleet import (
    SteppingClock,
    bench_platform,
    generator_main,
    locks_spec,
    measured_generator,
    percentiles,
    private_mosquitto,
    provision,
    scratch_dir,
    served,
)

GUESTS_PER_BOOKING = 2


async def generator() -> None:
    import httpx

    from anju.kit.crypto import SM2PrivateKey

    spec, locks, devices = await access_locks_ready()

    errors: list[str] = []
    http_ms: list[float] = []
    phone = SM2PrivateKey.generate().public_key.raw.hex()
    async with httpx.AsyncClient(
        base_url=spec["apis"][0],
        headers={"Authorization": f"Bearer {spec['token']}"},
        timeout=httpx.Timeout(120.0, pool=None),
        limits=httpx.Limits(max_connections=200),
    ) as client:

        async def check_in(booking: dict[str, Any]) -> None:
            guests = [{"subject_id": s} for s in booking["guests"]]
            guests[0]["holder_key"] = phone
            sent = time.monotonic()
            try:
                response = await client.post(
                    f"/api/v1/stays/{booking['id']}/check-in", json={"guests": guests}
                )
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
                return
            http_ms.append((time.monotonic() - sent) * 1000)
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text[:160]}")

        started = time.monotonic()
        for round_bookings in spec["rounds"]:
            await asyncio.gather(*(check_in(b) for b in round_bookings))
        seconds = time.monotonic() - started
    await asyncio.sleep(3.0)  # the last receipts
    for device in devices:
        await device.client.disconnect()
    summary = {
        "check_ins": len(http_ms),
        "seconds": seconds,
        "errors": errors[:20],
        "error_count": len(errors),
        "http_ms": percentiles(http_ms),
        "refused": locks.refused[:20],
    }
    print("done", json.dumps(summary), flush=True)


# --- the platform side -------------------------------------------------------------------------
async def prepare(
    platform: Any, fleet: Any, admin: Any, rooms: int, rounds: int
) -> tuple[str, list[list[dict[str, Any]]]]:
    """The hotel, its notices, consenting registered guests and their bookings; the desk token
    and the bookings per round."""
    from tests.support.access import manager
    from tests.support.consent import privacy_policy
    from tests.support.people import people
    from tests.support.properties import ADDRESS
    from tests.support.stays import face_unlock_notice, regulator_notice

    from anju.consent.service import ConsentService
    from anju.people.consent_gate import identity_verification_consent
    from anju.people.registration import Registrar
    from anju.people.service import Actor, new_subject_id
    from anju.people.verification.base import StaffCheck
    from anju.properties.service import PropertyService
    from anju.stays.journey import StayService
    from anju.stays.service import BookingDraft

    org = fleet.org_id
    desk = await manager(platform, platform.clock, admin, "bench-desk", role="front_desk")
    actor = f"account:{desk.account_id}"
    room_ids = []
    async with platform.db.transaction() as session:
        svc = PropertyService(platform, session)
        site = await svc.create_site(
            actor, org, kind="hotel", name="bench hotel", region_code="110105", address=ADDRESS
        )
        building = await svc.create_building(actor, org, site.id, "1号楼")
        unit = await svc.create_unit(actor, org, building.id, "1单元")
        for i, device in enumerate(fleet.devices[:rooms]):
            room = await svc.create_room(actor, org, unit.id, number=f"{1001 + i}", floor=10)
            await svc.bind_lock(actor, org, room.id, device["device_id"])
            room_ids.append(room.id)
        group = await svc.create_door_group(actor, org, "site", site.id, "大门")
        await svc.add_door(actor, org, group.id, fleet.devices[rooms]["device_id"])
        consent = ConsentService(platform, session)
        notices = {}
        for content in (privacy_policy(), regulator_notice(), face_unlock_notice()):
            notice = await consent.publish(org, actor, content)
            notices[notice.kind] = notice.version
    applications = iter(people(rooms * rounds * GUESTS_PER_BOOKING, seed=33))
    staff = StaffCheck(original_document_checked=True)
    answers = (
        ("privacy_policy", "identity_verification", "given"),
        ("regulator_reporting", "regulator_report", "given"),
        ("face_recognition", "lock_credential_issue", "refused"),
    )
    plan: list[list[dict[str, Any]]] = []
    now = platform.clock.now()
    for r in range(rounds):
        bookings = []
        for room_id in room_ids:
            guests = []
            for _ in range(GUESTS_PER_BOOKING):
                subject = new_subject_id()
                async with platform.db.transaction() as session:
                    consent = ConsentService(platform, session)
                    for kind, purpose, action in answers:
                        await consent.record(
                            org, actor, subject_id=subject, kind=kind, version=notices[kind],
                            purpose=purpose, action=action, channel="front_desk",
                        )  # fmt: skip
                async with platform.db.transaction() as session:
                    registrar = Registrar(
                        platform, session, consent_check=identity_verification_consent(platform)
                    )
                    await registrar.register(
                        Actor(actor, org), next(applications), staff, subject_id=subject
                    )
                guests.append(subject)
            starts = now + timedelta(days=3 * r, minutes=1)
            draft = BookingDraft(room_id, starts, starts + timedelta(days=2), GUESTS_PER_BOOKING)
            async with platform.db.transaction() as session:
                booking = await StayService(platform, session).create(actor, org, draft)
            bookings.append({"id": booking.id, "guests": guests})
        plan.append(bookings)
    return desk.token, plan


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import select
    from tests.support.accounts import make_admin

    from anju.access.models import AccessDelivery

    tmp = scratch_dir("anju-bench-checkin-")
    clock = SteppingClock()
    async with bench_platform(
        tmp, db_kind=args.db, clock=clock, second_factor_window_seconds=3600
    ) as platform:
        admin = await make_admin(platform, login="bench-admin", org="bench org")
        fleet = await provision(platform, tmp, args.concurrency + 1, org_id=admin.org_id)
        token, plan = await prepare(platform, fleet, admin, args.concurrency, args.rounds)
        async with (
            private_mosquitto(platform, tmp / "mosquitto") as broker,
            served(platform, broker) as (_gateway, api),
        ):
            spec = locks_spec(platform, broker, fleet, [api], token) | {
                "rounds": plan,
            }
            client, cpu, _ = await measured_generator(
                "bench.bench_checkin", spec, args.profile, 1800
            )
        async with platform.db.transaction() as session:
            deliveries = (
                await session.execute(
                    select(
                        AccessDelivery.state, AccessDelivery.queued_at, AccessDelivery.confirmed_at
                    ).where(AccessDelivery.state != "token")
                )
            ).all()
    installed = [
        (r.confirmed_at - r.queued_at).total_seconds() * 1000
        for r in deliveries
        if r.confirmed_at is not None
    ]
    states: dict[str, int] = {}
    for r in deliveries:
        states[r.state] = states.get(r.state, 0) + 1
    return {
        "args": vars(args),
        "client": client,
        "states": states,
        "install_ms": percentiles(installed),
        "cpu_ms_per_check_in": cpu / max(1, client["check_ins"]) * 1000,
    }


def report(r: dict[str, Any]) -> None:
    a, c, h, i = r["args"], r["client"], r["client"]["http_ms"], r["install_ms"]
    print(
        f"{a['db']}; {a['concurrency']} concurrent check-ins × {a['rounds']} rounds "
        f"({GUESTS_PER_BOOKING} guests each: 2 grants, 2 passcodes, 1 eKey, 2 reports): "
        f"{c['check_ins']} done in {c['seconds']:.1f} s, {c['error_count']} errors "
        f"{c['errors'][:2]}; lock refusals {c['refused'][:2]}",
        flush=True,
    )
    print(
        f"check-in request p50 {h['p50']:.0f} ms / p95 {h['p95']:.0f} ms / p99 {h['p99']:.0f} ms "
        f"(max {h['max']:.0f}); platform CPU {r['cpu_ms_per_check_in']:.1f} ms per check-in",
        flush=True,
    )
    print(
        f"credential installed on the lock (signed receipt) p50 {i['p50']:.0f} ms / p95 "
        f"{i['p95']:.0f} ms / p99 {i['p99']:.0f} ms; delivery states {r['states']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    generator_main(parser, generator, run, report)


if __name__ == "__main__":
    main()
