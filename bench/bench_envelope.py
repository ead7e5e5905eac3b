"""Envelope encryption and blind index throughput (one core).

Targets: envelope encrypt+decrypt of a 200-byte PI record with the data key resolved (cached)
≥ 20,000/s; blind index ≥ 50,000/s. Also measured: one uncached seal (unwrap + encrypt) and
the vault's cached seal path (cache lookup included).

    .venv/bin/python -m bench.bench_envelope
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from anju.kit.blind_index import BlindIndex
from anju.kit.crypto import random_bytes
from anju.kit.envelope import FieldContext, open_field, seal_field
from anju.kit.keyring import FileKeyProvider
from anju.privacy.vault import DataKeyCache, data_key_aad

RECORD = ("欧阳娜娜|11010519900101002X|13912345678|北京市朝阳区建国路88号" * 4).encode()[:200]
CTX = FieldContext("people", "document_number", "3f1c7a52-4c1e-4d0e-9a55-1d2f0b6a9e01", "subj")


def measure(name: str, n: int, fn: Callable[[], object], target: float | None) -> None:
    for _ in range(min(n // 10, 1000)):
        fn()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    rate = n / cpu if cpu > 0 else float("inf")
    line = f"{name:<48} {rate:>12,.0f} ops/s  {cpu / n * 1e6:>8.2f} µs CPU/op  (wall {wall:.2f}s)"
    if target is not None:
        line += f"  target {target:,.0f}/s  ratio {rate / target:.2f}x"
    print(line)


def main() -> None:
    key = random_bytes(16)
    assert len(RECORD) == 200
    blob = seal_field(key, 1, CTX, RECORD)

    def round_trip() -> bytes:
        return open_field(key, CTX, seal_field(key, 1, CTX, RECORD))

    measure("envelope encrypt+decrypt 200 B (key cached)", 50_000, round_trip, 20_000)
    measure("envelope encrypt 200 B", 50_000, lambda: seal_field(key, 1, CTX, RECORD), None)
    measure("envelope decrypt 200 B", 50_000, lambda: open_field(key, CTX, blob), None)

    cache = DataKeyCache(4096, 60.0)
    cache.put("db", "subj", 1, key, current=True)

    def cached_seal() -> bytes:
        hit = cache.get("db", "subj", None)
        assert hit is not None
        return seal_field(hit[1], hit[0], CTX, RECORD)

    measure("cache lookup + encrypt 200 B", 50_000, cached_seal, None)

    index = BlindIndex(random_bytes(32))
    measure(
        "blind index (id_number)",
        100_000,
        lambda: index.compute("person.document_number", "11010519900101002x", "id_number"),
        50_000,
    )
    measure(
        "blind index (name, text)",
        100_000,
        lambda: index.compute("person.name", "欧阳娜娜"),
        50_000,
    )

    with tempfile.TemporaryDirectory() as tmp:
        keys = FileKeyProvider.create(Path(tmp) / "keys" / "keyring.json")
        aad = data_key_aad("subj", 1)
        wrapped = keys.wrap(key, aad)

        def uncached_seal() -> bytes:
            return seal_field(keys.unwrap(wrapped, aad), 1, CTX, RECORD)

        measure("uncached seal (file-provider unwrap + encrypt)", 20_000, uncached_seal, None)


if __name__ == "__main__":
    main()
