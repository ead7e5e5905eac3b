"""SM2/SM3/SM4 throughput of the anju crypto facade, next to ``openssl speed`` on the same machine.

Run: ``.venv/bin/python -m bench.bench_sm2 [--seconds 3]``

Everything is measured on one core in CPU time (``time.process_time``), which is also what
``openssl speed`` reports by default (user CPU time, single process). Figures:

* SM2 sign/s and verify/s through ``SM2PrivateKey.sign`` / ``SM2PublicKey.verify`` (Z cached per
  key and signer id, e = SM3(Z‖M) computed in Python, digest signed by GmSSL);
* gmssl-pyx's one-call ``sm2_sign`` (recomputes Z on every call), for comparison;
* ``openssl speed -seconds N sm2`` parsed from its table (OpenSSL recomputes Z per signature too);
* SM3 and SM4-GCM throughput on 1 KiB messages, in MB/s (10^6 bytes).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import gmssl_pyx

from anju.kit.crypto import (
    DEFAULT_SIGNER_ID,
    SM2PrivateKey,
    random_bytes,
    sm3,
    sm4_gcm_encrypt,
)

MESSAGE = b"anju audit checkpoint: tree_size=1048576 root=" + bytes(range(32)).hex().encode()
KIB = 1024
TARGET_RATIO = 0.8


def rate(operation: Callable[[], object], seconds: float, batch: int = 20) -> float:
    """Operations per CPU second, running ``operation`` for about ``seconds``."""
    for _ in range(batch):  # warm up
        operation()
    done = 0
    start = time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        for _ in range(batch):
            operation()
        done += batch
    return done / elapsed


@dataclass(frozen=True)
class OpensslSpeed:
    sign_per_s: float
    verify_per_s: float
    version: str


def openssl_speed(seconds: int) -> OpensslSpeed | None:
    """Run ``openssl speed -seconds N sm2`` and parse the SM2 row of its summary table."""
    binary = shutil.which("openssl")
    if binary is None:
        return None
    done = subprocess.run(
        [binary, "speed", "-seconds", str(seconds), "sm2"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60 + 4 * seconds,
    )
    # e.g. " 256 bits SM2 (CurveSM2)   0.0003s   0.0003s   2942.1   3414.0"
    row = re.search(
        r"SM2 \(CurveSM2\)\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)", done.stdout + done.stderr
    )
    if done.returncode != 0 or row is None:
        return None
    version = subprocess.run(
        [binary, "version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return OpensslSpeed(float(row.group(1)), float(row.group(2)), version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=3, help="seconds per measurement")
    args = parser.parse_args(argv)
    seconds: int = args.seconds

    key = SM2PrivateKey.generate()
    public = key.public_key
    signature = key.sign(MESSAGE)
    assert public.verify(MESSAGE, signature)
    private_raw, public_raw = key.private_bytes(), public.raw

    def plain_sign() -> object:
        return gmssl_pyx.sm2_sign(private_raw, public_raw, MESSAGE, DEFAULT_SIGNER_ID)

    sign_rate = rate(lambda: key.sign(MESSAGE), seconds)
    verify_rate = rate(lambda: public.verify(MESSAGE, signature), seconds)
    plain_rate = rate(plain_sign, seconds)

    block = random_bytes(KIB)
    gcm_key, nonce, aad = random_bytes(16), random_bytes(12), b"table=guest;column=name;v=1"
    sm3_rate = rate(lambda: sm3(block), seconds, batch=200)
    gcm_rate = rate(lambda: sm4_gcm_encrypt(gcm_key, nonce, block, aad), seconds, batch=200)

    theirs = openssl_speed(seconds)

    print(f"anju crypto facade, one core, CPU time, {seconds} s per figure")
    print(f"message: {len(MESSAGE)} bytes, signer id {DEFAULT_SIGNER_ID.decode()}")
    print()
    print(f"{'':34}{'sign/s':>10}{'verify/s':>10}")
    print(f"{'anju SM2 (Z cached, sign digest)':34}{sign_rate:10.0f}{verify_rate:10.0f}")
    print(f"{'gmssl-pyx sm2_sign (Z each time)':34}{plain_rate:10.0f}{'':>10}")
    if theirs is None:
        print("openssl speed sm2: not available (no openssl binary with SM2)")
    else:
        sign_ratio = sign_rate / theirs.sign_per_s
        verify_ratio = verify_rate / theirs.verify_per_s
        print(f"{'openssl speed sm2':34}{theirs.sign_per_s:10.0f}{theirs.verify_per_s:10.0f}")
        print(f"{'ratio anju / openssl':34}{sign_ratio:10.2f}{verify_ratio:10.2f}")
        print(f"  ({theirs.version})")
        for name, ratio in (("sign", sign_ratio), ("verify", verify_ratio)):
            verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
            print(f"  {name}: {verdict} the {TARGET_RATIO}x target")
    print(f"  plain sm2_sign is {sign_rate / plain_rate:.1f}x slower than the facade's sign")
    print()
    print(f"SM3 on 1 KiB messages:      {sm3_rate * KIB / 1e6:8.1f} MB/s ({sm3_rate:.0f} msg/s)")
    print(f"SM4-GCM on 1 KiB messages:  {gcm_rate * KIB / 1e6:8.1f} MB/s ({gcm_rate:.0f} msg/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
