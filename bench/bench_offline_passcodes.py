"""Offline passcodes: CPU per code checked on the lock, and time to issue 10,000 codes.

Run: ``.venv/bin/python -m bench.bench_offline_passcodes [--seconds 2] [--codes 10000]``

One core, CPU time (``time.process_time``). The lock side runs on a real
``SoftwareSecureElement`` (manufactured in a temporary directory), so every Feistel round is one
``se.hmac`` call: HKDF-SM3 of the label key and HMAC-SM3 inside the SE, as the firmware does.
A code that opens is found under the lock's own epoch (10 PRF calls); a wrong guess is tried
under all six epochs the lock looks at (60 PRF calls), which is the worst case. The platform
side issues with ``platform_prf`` (``se_hmac`` from its copy of the root key).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from anju.device import SoftwareSecureElement
from anju.device.offline_codes import OfflineCodeBook, secure_element_prf
from anju.protocol.offline_passcode import (
    HOUR,
    OfflineGrant,
    OfflineKind,
    Recurrence,
    code_length,
    issue_offline_passcode,
    platform_prf,
)
from bench.bench_protocol import rate

DEVICE_ID = "00112233445566778899aabbccddeeff"
PIN = b"bench-offline-pin"
NOW = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)
START = NOW.replace(hour=6, minute=0) - timedelta(days=1)
GRANTS = [
    OfflineGrant(OfflineKind.ONE_TIME, NOW.replace(minute=0), NOW.replace(minute=0) + 4 * HOUR),
    OfflineGrant(OfflineKind.PERIOD, START, START + 46 * HOUR),
    OfflineGrant(OfflineKind.PERMANENT, START, None),
    OfflineGrant(
        OfflineKind.RECURRING,
        START.replace(hour=0),
        START.replace(hour=0) + timedelta(weeks=12),
        recurrence=Recurrence(127, 0, 24),
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--codes", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        se, record = SoftwareSecureElement.manufacture(Path(tmp), device_id=DEVICE_ID, pin=PIN)
        se.verify_pin(PIN)
        issuer = platform_prf(record.root_key)
        book = OfflineCodeBook(secure_element_prf(se))
        print("lock side: PRF = SoftwareSecureElement.hmac (HKDF-SM3 + HMAC-SM3 per call)")
        for grant in GRANTS:
            code = issue_offline_passcode(issuer, grant)
            assert book.check(code, NOW).accepted
            # A fresh book for a one-time code: its second use would be refused.
            fresh = grant.kind is OfflineKind.ONE_TIME

            def verify(code: str = code, fresh: bool = fresh) -> None:
                lock = OfflineCodeBook(secure_element_prf(se)) if fresh else book
                assert lock.check(code, NOW).accepted

            per_second, us = rate(verify, args.seconds)
            print(
                f"verify {grant.kind.value:<10} {code_length(grant)} digits, opens "
                f"{us:8.0f} µs CPU  ({per_second:6.0f}/s)"
            )
        rng = random.Random(1)
        for digits in (10, 16):

            def guess(digits: int = digits) -> None:
                book.check(f"{rng.randrange(10**digits):0{digits}d}", NOW)

            per_second, us = rate(guess, args.seconds)
            print(
                f"verify wrong guess  {digits} digits       {us:8.0f} µs CPU  ({per_second:6.0f}/s)"
            )

        print("platform side: PRF = se_hmac(root key, label, ·)")
        grants = [
            OfflineGrant(
                OfflineKind.PERIOD, START + i // 4 * HOUR, START + (i // 4 + 46) * HOUR, i % 4
            )
            for i in range(args.codes)
        ]
        cpu, wall = time.process_time(), time.perf_counter()
        codes = {issue_offline_passcode(issuer, grant) for grant in grants}
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert len(codes) == args.codes  # distinct payloads, distinct codes
        print(
            f"issue {args.codes:,} codes: {wall:.2f} s wall, {cpu:.2f} s CPU "
            f"({cpu / args.codes * 1e6:.0f} µs CPU each)"
        )


if __name__ == "__main__":
    main()
