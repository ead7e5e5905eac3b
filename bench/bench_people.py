"""Real-name registration with all crypto on, and the person's JSON export.

- registrations/s, staff check: validation, six SM4-GCM seals under a new per-subject data key
  (wrapped by the master key), two blind indexes (HMAC-SM3), the SM2-signed verification
  statement, two audit entries — one transaction each, SQLite, sequential.
- registrations/s, CTID-style: the same plus the signed HTTP round trip to the fake service on
  loopback (SM2 encryption of the request key, HMAC-SM3, SM2 verification of the answer).
- JSON export for a person with N audit events about them (default 10,000): decrypt every
  field (each decryption audited), the signed statements and the whole access trail.

    .venv/bin/python -m bench.bench_people            # full
    .venv/bin/python -m bench.bench_people --quick    # smoke run, tiny numbers
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from tests.support.people import people

from anju.audit import AuditLog
from anju.audit.service import NewEntry
from anju.db import Database
from anju.kit.clock import SystemClock
from anju.migrations import upgrade
from anju.people.registration import Registrar
from anju.people.rights import SubjectRights
from anju.people.service import Actor, PeopleService
from anju.people.verification.base import NetworkCheck, StaffCheck
from anju.people.verification.ctid import CtidProvider
from anju.people.verification.fake_ctid import FakeCtidService
from anju.platform import Platform, open_key_provider
from anju.settings import Settings

DESK = Actor("account:bench-desk", "org-bench")


async def _run(registrations: int, events: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        keys = open_key_provider(settings, create=True)
        db = Database(settings.resolved_database_url)
        await upgrade(db)
        platform = Platform(settings=settings, db=db, keys=keys, clock=SystemClock())
        guests = people(2 * registrations)
        try:
            staff = StaffCheck(original_document_checked=True)
            started = time.perf_counter()
            for guest in guests[:registrations]:
                async with db.transaction() as s:
                    await Registrar(platform, s).register(DESK, guest, staff)
            wall = time.perf_counter() - started
            print(
                f"registration, staff check (SQLite, sequential): {registrations / wall:.1f}/s, "
                f"{wall / registrations * 1000:.1f} ms each"
            )

            service = FakeCtidService()
            for guest in guests[registrations:]:
                service.add_identity(guest.document_type, guest.document_number, guest.name)
            service.start()
            provider = NetworkCheck(CtidProvider(service.config(), platform.clock))
            started = time.perf_counter()
            last = None
            for guest in guests[registrations:]:
                async with db.transaction() as s:
                    last = await Registrar(platform, s).register(DESK, guest, provider)
            wall = time.perf_counter() - started
            service.stop()
            print(
                f"registration, CTID-style over loopback HTTP: {registrations / wall:.1f}/s, "
                f"{wall / registrations * 1000:.1f} ms each"
            )

            assert last is not None
            assert last.person_id is not None
            audit = AuditLog(platform)
            entry = NewEntry(
                "biometric.template_1to1", "account:bench-lock", "org-bench",
                f"subject:{last.subject_id}", "success", {"result": "match"},
            )  # fmt: skip
            for start in range(0, events, 1000):
                async with db.transaction() as s:
                    await audit.record_many(s, [entry] * min(1000, events - start))
            started = time.perf_counter()
            async with db.transaction() as s:
                person = await PeopleService(platform, s).person(last.person_id, "org-bench")
                export = await SubjectRights(platform, s).export(person)
            wall = time.perf_counter() - started
            size = len(json.dumps(export, ensure_ascii=False).encode())
            print(
                f"JSON export with {len(export['access_trail'])} trail entries: "
                f"{wall * 1000:.0f} ms, {size / 1024:.0f} KiB"
            )
        finally:
            await db.dispose()


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    asyncio.run(_run(5 if quick else 200, 50 if quick else 10_000))


if __name__ == "__main__":
    main(sys.argv[1:])
