"""Device protocol throughput: DATA seal+open per second and full handshakes per second.

Run: ``.venv/bin/python -m bench.bench_protocol [--seconds 3]``

One core, CPU time (``time.process_time``). Target context: the gateway must ingest ≥ 5,000
events/s on 2 cores, so opening (authenticate, decrypt, check, parse) must reach well over
2,500/s per core with room for the rest of the pipeline. A handshake is measured with both sides
in one process (device: sign HELLO, verify gateway cert and WELCOME, SM2-decrypt Kp, seal
CONFIRM; platform: verify device cert and HELLO, SM2-encrypt Kp, sign WELCOME, open CONFIRM),
and each side's share is reported too.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from anju.kit.crypto import SM2PrivateKey, random_bytes
from anju.protocol.certificates import CertKind, issue_certificate
from anju.protocol.channel import Direction, SecureChannel
from anju.protocol.handshake import DeviceHandshake, GatewayHandshake, ReplayCache
from anju.protocol.reference import SoftwareKeyStore

TARGET_EVENTS_PER_SECOND_2_CORES = 5000
DEVICE_ID = "00112233445566778899aabbccddeeff"
SE_ID = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
NOW_MS = 1_767_528_000_000
EVENT = {
    "t": "evt",
    "id": "e-000001",
    "at": NOW_MS,
    "kind": "door.unlock",
    "data": {"method": "passcode", "ok": True, "user": "u-1234", "battery": 81},
}


def rate(operation: Callable[[], object], seconds: float) -> tuple[float, float]:
    """(operations per CPU second, CPU µs per operation)."""
    for _ in range(20):
        operation()
    done = 0
    start = time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        for _ in range(50):
            operation()
        done += 50
    return done / elapsed, elapsed / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    seconds = parser.parse_args().seconds
    clock = lambda: NOW_MS  # noqa: E731
    k_up, k_down = random_bytes(16), random_bytes(16)
    sid = random_bytes(8)
    device = SecureChannel(DEVICE_ID, sid, k_up, k_down, Direction.UP, clock)
    platform = SecureChannel(DEVICE_ID, sid, k_down, k_up, Direction.DOWN, clock)
    frames: list[bytes] = []

    def seal() -> None:
        frames.append(device.seal(EVENT))

    seal_rate, seal_us = rate(seal, seconds)
    frames_iter = iter(frames)

    def open_() -> None:
        platform.open(next(frames_iter))

    open_rate, open_us = rate(open_, min(seconds, 0.9 * len(frames) / seal_rate))
    both = 1e6 / (seal_us + open_us)
    print(f"DATA frame size: {len(frames[0])} bytes (event plaintext {len(frames[0]) - 42} B)")
    print(f"DATA seal        {seal_rate:10.0f} /s per core  {seal_us:7.1f} µs CPU each")
    print(f"DATA open        {open_rate:10.0f} /s per core  {open_us:7.1f} µs CPU each")
    print(f"DATA seal+open   {both:10.0f} /s per core")
    per_core_target = TARGET_EVENTS_PER_SECOND_2_CORES / 2
    print(
        f"gateway ingest (open) vs target {per_core_target:.0f}/s per core: "
        f"{open_rate / per_core_target:.1f}x"
    )

    ca = SM2PrivateKey.generate()
    gw_key = SM2PrivateKey.generate()
    dev_key = SM2PrivateKey.generate()
    validity = {"not_before": NOW_MS // 1000 - 10, "not_after": NOW_MS // 1000 + 10**6}
    dev_cert = issue_certificate(
        ca,
        kind=CertKind.DEVICE,
        subject=DEVICE_ID,
        se_id=SE_ID,
        product="lock-x1",
        public_key=dev_key.public_key,
        **validity,
    )
    gw_cert = issue_certificate(
        ca,
        kind=CertKind.GATEWAY,
        subject="gw-1",
        se_id="",
        product="anju-gateway",
        public_key=gw_key.public_key,
        **validity,
    )
    root = random_bytes(16)
    gateway = GatewayHandshake(
        gw_cert,
        gw_key,
        ca.public_key,
        lambda cert: root,
        now_ms=clock,
        replay_cache=ReplayCache(capacity=1_000_000),
    )
    store = SoftwareKeyStore(dev_key, root)
    timings = {"device": 0.0, "platform": 0.0}

    def handshake() -> None:
        t0 = time.process_time()
        d = DeviceHandshake(DEVICE_ID, dev_cert, store, ca.public_key, now_ms=clock)
        hello = d.hello()
        t1 = time.process_time()
        pending, welcome = gateway.respond(hello)
        t2 = time.process_time()
        _, confirm = d.on_welcome(welcome)
        t3 = time.process_time()
        pending.on_confirm(confirm)
        t4 = time.process_time()
        timings["device"] += (t1 - t0) + (t3 - t2)
        timings["platform"] += (t2 - t1) + (t4 - t3)

    hs_rate, hs_us = rate(handshake, seconds)
    total = timings["device"] + timings["platform"]
    print(f"full handshake   {hs_rate:10.0f} /s per core  {hs_us / 1000:7.2f} ms CPU each")
    share = timings["platform"] / total
    print(
        f"  platform side  {hs_rate / share:10.0f} /s per core  "
        f"(device side {hs_rate / (1 - share):.0f} /s)"
    )


if __name__ == "__main__":
    main()
