"""The software SE's flash (the fuse file and the sealed state record) and its power-up health
checks (known-answer tests, RNG stuck-output check)."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from anju.device.se_model import KeyUsage, SecureElementError
from anju.kit.crypto import random_bytes, sm3, sm4_ecb_encrypt_block

# fuses.bin: magic(4) ‖ format(u8) ‖ personalised(u8) ‖ se_id(16) ‖ storage_key(16) ‖ check(8)
FUSES_LAYOUT = struct.Struct(">4sBB16s16s")
FUSES_MAGIC = b"ASEF"
FUSES_FILE = "fuses.bin"
STATE_NAME = "state"
TOMBSTONE_FILE = "ZEROIZED"


def encode_fuses(se_id: bytes, storage_key: bytes, *, personalised: bool) -> bytes:
    body = FUSES_LAYOUT.pack(FUSES_MAGIC, 1, int(personalised), se_id, storage_key)
    return body + sm3(body)[:8]


def decode_fuses(data: bytes) -> tuple[bytes, bytes, bool]:
    if (
        len(data) != FUSES_LAYOUT.size + 8
        or sm3(data[: FUSES_LAYOUT.size])[:8] != data[FUSES_LAYOUT.size :]
    ):
        raise SecureElementError("se_fuses_corrupt", "SE fuse file is damaged")
    magic, fmt, personalised, se_id, storage_key = FUSES_LAYOUT.unpack(data[: FUSES_LAYOUT.size])
    if magic != FUSES_MAGIC or fmt != 1 or personalised not in (0, 1):
        raise SecureElementError("se_fuses_corrupt", "SE fuse file is damaged")
    return se_id, storage_key, bool(personalised)


def self_test() -> None:
    """Known-answer tests of SM3 (GB/T 32905 A.1) and SM4 (GB/T 32907 A.1); raise on mismatch."""
    sm4_key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    ok = (
        sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        and sm4_ecb_encrypt_block(sm4_key, sm4_key).hex() == "681edf34d206965e86b3e94f536e4246"
    )
    if not ok:
        raise SecureElementError("se_self_test_failed", "algorithm known-answer test failed")


def fresh_random(n: int) -> bytes:
    """RNG output with a stuck-output health check (a repeated or constant block fails)."""
    first, second = random_bytes(n), random_bytes(n)
    if first == second or len(set(first)) == 1:
        raise SecureElementError("se_self_test_failed", "random number generator health check")
    return first


@dataclass
class SeState:
    """Everything sealed in the SE's flash. Never leaves the object unsealed."""

    device_id: str
    version: str
    device_key: bytes
    root_key: bytes
    data_key: bytes
    pin_salt: bytes
    pin_verifier: bytes
    pin_tries: int
    pin_failures: int
    failure_threshold: int
    failures: int
    secrets: dict[str, tuple[bytes, KeyUsage]]

    def encode(self) -> bytes:
        doc = {
            "format": 1,
            "device_id": self.device_id,
            "version": self.version,
            "device_key": self.device_key.hex(),
            "root_key": self.root_key.hex(),
            "data_key": self.data_key.hex(),
            "pin_salt": self.pin_salt.hex(),
            "pin_verifier": self.pin_verifier.hex(),
            "pin_tries": self.pin_tries,
            "pin_failures": self.pin_failures,
            "failure_threshold": self.failure_threshold,
            "failures": self.failures,
            "secrets": {k: [v.hex(), u.value] for k, (v, u) in sorted(self.secrets.items())},
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> SeState:
        doc = json.loads(data)
        if doc.get("format") != 1:
            raise ValueError("unknown SE state format")
        return cls(
            device_id=str(doc["device_id"]),
            version=str(doc["version"]),
            device_key=bytes.fromhex(doc["device_key"]),
            root_key=bytes.fromhex(doc["root_key"]),
            data_key=bytes.fromhex(doc["data_key"]),
            pin_salt=bytes.fromhex(doc["pin_salt"]),
            pin_verifier=bytes.fromhex(doc["pin_verifier"]),
            pin_tries=int(doc["pin_tries"]),
            pin_failures=int(doc["pin_failures"]),
            failure_threshold=int(doc["failure_threshold"]),
            failures=int(doc["failures"]),
            secrets={
                k: (bytes.fromhex(v), KeyUsage(int(u))) for k, (v, u) in doc["secrets"].items()
            },
        )
