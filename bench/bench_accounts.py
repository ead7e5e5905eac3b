"""Password hashing and sign-in cost: argon2id (t=3, m=64 MiB, p=1) and a full login.

A login must cost an attacker a lot and a user little. Target: one argon2id verification in
0.05–0.5 s of one core (above OWASP's minimum argon2id profile, below what users notice), and
an end-to-end login (hash + session + audit entry on SQLite) under 0.5 s. Concurrent logins run
argon2 in worker threads (argon2-cffi releases the GIL), so they scale with cores.

    .venv/bin/python -m bench.bench_accounts
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

from anju.accounts.passwords import DEFAULT_ARGON2, Passwords
from anju.accounts.service import AccountService, sign_in
from anju.db import Database
from anju.errors import AnjuError
from anju.kit.clock import SystemClock
from anju.migrations import upgrade
from anju.platform import Platform, open_key_provider
from anju.settings import Settings

PASSWORD = "Correct-Horse-42"  # noqa: S105 (a benchmark fixture)
TARGET_VERIFY_MAX_S = 0.5
TARGET_LOGIN_MAX_S = 0.5


def _argon2(passwords: Passwords, rounds: int) -> None:
    stored = passwords._hasher.hash(PASSWORD)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        passwords._hasher.verify(stored, PASSWORD)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    per = wall / rounds
    print(
        f"argon2id verify t={DEFAULT_ARGON2.time_cost} m={DEFAULT_ARGON2.memory_kib // 1024}MiB "
        f"p={DEFAULT_ARGON2.parallelism}: {rounds / wall:.1f} ops/s, {per * 1000:.0f} ms wall, "
        f"{cpu / rounds * 1000:.0f} ms CPU per op; ratio to the {TARGET_VERIFY_MAX_S:.1f} s "
        f"ceiling {per / TARGET_VERIFY_MAX_S:.2f}"
    )


async def _login(passwords: Passwords, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        keys = open_key_provider(settings, create=True)
        db = Database(settings.resolved_database_url)
        await upgrade(db)
        platform = Platform(settings=settings, db=db, keys=keys, clock=SystemClock())
        try:
            async with db.transaction() as s:
                await AccountService(platform, s, passwords).bootstrap_security_admin(
                    login="bench-admin", password=PASSWORD, org_name=None
                )

            async def one() -> None:
                await sign_in(platform, "bench-admin", PASSWORD, passwords=passwords)

            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(rounds):
                await one()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            per = wall / rounds
            print(
                f"login end-to-end (SQLite, sequential): {rounds / wall:.1f} logins/s, "
                f"{per * 1000:.0f} ms wall, {cpu / rounds * 1000:.0f} ms CPU per login; "
                f"ratio to the {TARGET_LOGIN_MAX_S:.1f} s ceiling {per / TARGET_LOGIN_MAX_S:.2f}"
            )

            async def unknown() -> None:
                with contextlib.suppress(AnjuError):  # the refusal is what is timed
                    await sign_in(platform, "nobody", PASSWORD, passwords=passwords)

            wall = time.perf_counter()
            for _ in range(rounds):
                await unknown()
            per_unknown = (time.perf_counter() - wall) / rounds
            print(
                f"refused login of an unknown name: {per_unknown * 1000:.0f} ms wall "
                f"(ratio to a successful login {per_unknown / per:.2f}; ~1 means no timing leak)"
            )

            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(one() for _ in range(rounds)))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"login end-to-end (SQLite, {rounds} concurrent): {rounds / wall:.1f} logins/s, "
                f"{cpu / rounds * 1000:.0f} ms CPU per login"
            )
        finally:
            await db.dispose()


def main() -> None:
    passwords = Passwords()
    _argon2(passwords, 20)
    asyncio.run(_login(passwords, 12))


if __name__ == "__main__":
    main()
