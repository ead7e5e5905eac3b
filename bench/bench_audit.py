"""Audit log throughput: appends with Merkle maintenance, proof verifications, full verify.

Appends are committed in batches (``record_many``, 500 per transaction) with the tree lock,
the entry rows and every completed interior node written in the same transaction, and a signed
checkpoint every 1000 entries (the default). Target ≥ 5,000 appends/s (anchor: Tessera ≈ 2,900
writes/s on a 12-core VM). Also single ``record`` calls (one per transaction) for reference.

    .venv/bin/python -m bench.bench_audit

PostgreSQL: 127.0.0.1:5432 database ``test`` user ``postgres``, in a temporary schema; skipped
when unreachable. ``ANJU_BENCH_POSTGRES_URL`` overrides the URL.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from anju.audit import AuditLog, NewEntry
from anju.audit.verify import ConsistencyProof, InclusionProof
from anju.db import Database
from anju.kit import merkle
from anju.kit.clock import SystemClock
from anju.migrations import upgrade
from anju.platform import Platform, open_key_provider
from anju.settings import Settings

POSTGRES_URL = os.environ.get(
    "ANJU_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
TARGET_APPENDS = 5_000.0
BATCH = 500
ENTRIES = 20_000
SINGLE = 500


def entry(i: int) -> NewEntry:
    return NewEntry(
        action="locks.unlock",
        actor=f"account:{i % 97:08d}-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        org_id="7d9f2c1e-5b3a-4c8d-9e0f-1a2b3c4d5e6f",
        target=f"lock:{i % 1013}",
        outcome="success",
        details={"method": "ble", "device": f"dev-{i % 311}", "ok": True},
    )


def line(name: str, n: int, wall: float, cpu: float, target: float | None) -> None:
    rate = n / wall if wall > 0 else float("inf")
    out = (
        f"{name:<52} {rate:>10,.0f} /s  {cpu / n * 1e6:>8.1f} µs CPU/op  "
        f"(n={n:,}, wall {wall:.2f}s)"
    )
    if target is not None:
        out += f"  target {target:,.0f}/s  ratio {rate / target:.2f}x"
    print(out, flush=True)


async def bench_backend(label: str, url: str, data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, database_url=url)
    keys = open_key_provider(settings, create=True)
    db = Database(url)
    await upgrade(db)
    platform = Platform(settings=settings, db=db, keys=keys, clock=SystemClock())
    log = AuditLog(platform)
    try:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for start in range(0, ENTRIES, BATCH):
            async with db.transaction() as session:
                await log.record_many(session, [entry(i) for i in range(start, start + BATCH)])
        line(
            f"[{label}] append, {BATCH}/transaction, Merkle + checkpoints",
            ENTRIES,
            time.perf_counter() - wall0,
            time.process_time() - cpu0,
            TARGET_APPENDS,
        )

        wall0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(SINGLE):
            async with db.transaction() as session:
                e = entry(i)
                await log.record(session, action=e.action, actor=e.actor, details=e.details)
        line(
            f"[{label}] record(), one entry per transaction",
            SINGLE,
            time.perf_counter() - wall0,
            time.process_time() - cpu0,
            None,
        )

        async with db.transaction() as session:
            await log.checkpoint(session)
            size = ENTRIES + SINGLE
            wall0, cpu0 = time.perf_counter(), time.process_time()
            proofs: list[InclusionProof] = []
            for i in range(0, size, size // 200):
                proofs.append(await log.inclusion_proof(session, i, size))
            line(
                f"[{label}] inclusion proof generation (from DB)",
                len(proofs),
                time.perf_counter() - wall0,
                time.process_time() - cpu0,
                None,
            )
            consistency: list[ConsistencyProof] = []
            for m in range(1, size, size // 100):
                consistency.append(await log.consistency_proof(session, m, size))

            wall0, cpu0 = time.perf_counter(), time.process_time()
            report = await log.verify(session)
            assert report.ok, report.problems
            line(
                f"[{label}] full verify (entries rebuilt, nodes, sigs)",
                report.entries,
                time.perf_counter() - wall0,
                time.process_time() - cpu0,
                None,
            )
        verify_proofs(proofs, consistency)
    finally:
        await db.dispose()


def repeat(fn: Callable[[], None], seconds: float = 1.0) -> tuple[int, float, float]:
    n, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        fn()
        n += 1
    return n, time.perf_counter() - wall0, time.process_time() - cpu0


def verify_proofs(proofs: list[InclusionProof], consistency: list[ConsistencyProof]) -> None:
    def inclusion() -> None:
        for p in proofs:
            merkle.verify_inclusion(p.index, p.size, p.leaf_hash, p.proof, p.root)

    n, wall, cpu = repeat(inclusion)
    line("inclusion proof verification (n≈20k, pure)", n * len(proofs), wall, cpu, None)

    def consistent() -> None:
        for c in consistency:
            merkle.verify_consistency(c.old_size, c.new_size, c.old_root, c.new_root, c.proof)

    n, wall, cpu = repeat(consistent)
    line("consistency proof verification (n≈20k, pure)", n * len(consistency), wall, cpu, None)


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


async def main_async() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for sub in ("s", "p"):
            (base / sub).mkdir()
        await bench_backend("sqlite", f"sqlite+aiosqlite:///{base / 'audit.db'}", base / "s")
        if not postgres_reachable():
            print("[postgres] skipped: 127.0.0.1:5432 not reachable")
            return
        schema = f"anju_bench_{secrets.token_hex(4)}"
        admin = create_async_engine(POSTGRES_URL)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            await bench_backend("postgres", f"{POSTGRES_URL}?search_path={schema}", base / "p")
        finally:
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()


def main() -> None:
    asyncio.run(main_async())


if __name__ == "__main__":
    main()
