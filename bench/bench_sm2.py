"""SM2/SM3/SM4 throughput of the anju crypto facade, next to ``openssl speed`` on the same machine.

Run: ``.venv/bin/python -m bench.bench_sm2 [--seconds 3]``

Everything is measured on one core in CPU time (``time.process_time``), which is also what
``openssl speed`` reports by default (user CPU time, single process). Figures:

* SM2 sign/s and verify/s through ``SM2PrivateKey.sign`` / ``SM2PublicKey.verify`` (Z cached per
  key and signer id, e = SM3(Z‖M) computed in Python, digest signed by GmSSL). Verify is measured
  on both backends: OpenSSL 3 libcrypto through ctypes (the automatic choice when available) and
  GmSSL (forced with ``force_gmssl_verify``);
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
    openssl_sm2,
    random_bytes,
    sm3,
    sm4_gcm_encrypt,
)
from anju.kit.crypto.sm2 import force_gmssl_verify, verify_backend

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


def _cell(value: float | None) -> str:
    return f"{value:10.0f}" if value is not None else f"{'':>10}"


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

    def verify() -> object:
        return public.verify(MESSAGE, signature)

    sign_rate = rate(lambda: key.sign(MESSAGE), seconds)
    verify_rates: dict[str, float] = {}
    try:
        force_gmssl_verify(True)
        assert verify_backend() == "gmssl"
        verify_rates["gmssl"] = rate(verify, seconds)
    finally:
        force_gmssl_verify(False)
    if verify_backend() == "openssl":
        verify_rates["openssl"] = rate(verify, seconds)
    plain_rate = rate(plain_sign, seconds)

    block = random_bytes(KIB)
    gcm_key, nonce, aad = random_bytes(16), random_bytes(12), b"table=guest;column=name;v=1"
    sm3_rate = rate(lambda: sm3(block), seconds, batch=200)
    gcm_rate = rate(lambda: sm4_gcm_encrypt(gcm_key, nonce, block, aad), seconds, batch=200)

    theirs = openssl_speed(seconds)

    print(f"anju crypto facade, one core, CPU time, {seconds} s per figure")
    print(f"message: {len(MESSAGE)} bytes, signer id {DEFAULT_SIGNER_ID.decode()}")
    print()
    default = verify_backend()
    if default == "gmssl":
        print(f"OpenSSL verify backend unavailable: {openssl_sm2.unavailable_reason()}")
    else:
        print(f"verify backend: openssl ({openssl_sm2.library_version()} via ctypes)")
    rows = [("anju SM2 sign (GmSSL, Z cached)", sign_rate, None)]
    rows += [(f"anju SM2 verify, {name} backend", None, r) for name, r in verify_rates.items()]
    print(f"{'':38}{'sign/s':>10}{'verify/s':>10}")
    for label, signs, verifies in rows:
        print(f"{label:38}{_cell(signs)}{_cell(verifies)}")
    print(f"{'gmssl-pyx sm2_sign (Z each time)':38}{plain_rate:10.0f}{'':>10}")
    if theirs is None:
        print("openssl speed sm2: not available (no openssl binary with SM2)")
    else:
        print(f"{'openssl speed sm2':38}{theirs.sign_per_s:10.0f}{theirs.verify_per_s:10.0f}")
        print(f"  ({theirs.version})")
        ratios = [("sign", sign_rate / theirs.sign_per_s)]
        ratios += [(f"verify ({n})", r / theirs.verify_per_s) for n, r in verify_rates.items()]
        for name, ratio in ratios:
            verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
            used = " <- used" if name == f"verify ({default})" else ""
            print(f"  {name:16} {ratio:5.2f}x openssl: {verdict} the {TARGET_RATIO}x target{used}")
    print(f"  plain sm2_sign is {sign_rate / plain_rate:.1f}x slower than the facade's sign")
    print()
    print(f"SM3 on 1 KiB messages:      {sm3_rate * KIB / 1e6:8.1f} MB/s ({sm3_rate:.0f} msg/s)")
    print(f"SM4-GCM on 1 KiB messages:  {gcm_rate * KIB / 1e6:8.1f} MB/s ({gcm_rate:.0f} msg/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
