"""Key derivations of the device protocol (one place for each; see docs/protocol.md)."""

from __future__ import annotations

import struct

from anju.kit.crypto import hkdf_sm3, hmac_sm3
from anju.protocol.frames import KP_BYTES, NONCE_BYTES, SESSION_ID_BYTES
from anju.protocol.topics import check_device_id

ROOT_KEY_BYTES = 16
ROOT_KEY_RANDOM_BYTES = 32
ROOT_KEY_INFO = b"anju/device-root-key/v1"
SESSION_INFO = b"anju/session/v1"
_TIMES = struct.Struct(">QQ")


def derive_root_key(se_id: str, device_id: str, fresh_random: bytes) -> bytes:
    """R18d device root key: HKDF-SM3(SE id ‖ device id ‖ 32 random bytes), 16 bytes.

    Runs inside the secure element; the platform receives the result once, at manufacture.
    """
    if len(fresh_random) != ROOT_KEY_RANDOM_BYTES:
        raise ValueError("the root key needs 32 fresh random bytes")
    ikm = bytes.fromhex(check_device_id(se_id)) + bytes.fromhex(check_device_id(device_id))
    return hkdf_sm3(ikm + fresh_random, length=ROOT_KEY_BYTES, info=ROOT_KEY_INFO)


def session_salt(nd: bytes, np: bytes) -> bytes:
    """HKDF salt of a session: Nd ‖ Np."""
    if len(nd) != NONCE_BYTES or len(np) != NONCE_BYTES:
        raise ValueError("Nd and Np must be 16 bytes")
    return nd + np


def session_info(device_id: str, session_id: bytes, td_ms: int, tp_ms: int) -> bytes:
    """HKDF info of a session: context ‖ device id (16) ‖ session id (8) ‖ Td ‖ Tp (u64 ms)."""
    if len(session_id) != SESSION_ID_BYTES:
        raise ValueError("session id must be 8 bytes")
    return (
        SESSION_INFO
        + bytes.fromhex(check_device_id(device_id))
        + session_id
        + _TIMES.pack(td_ms, tp_ms)
    )


def derive_session_keys(
    root_key: bytes, kp: bytes, salt: bytes, info: bytes
) -> tuple[bytes, bytes]:
    """(k_up, k_down) = HKDF-SM3(root key ‖ Kp, salt, info, 32 bytes) split in halves."""
    if len(root_key) != ROOT_KEY_BYTES or len(kp) != KP_BYTES:
        raise ValueError("root key must be 16 bytes and Kp 32 bytes")
    okm = hkdf_sm3(root_key + kp, length=32, info=info, salt=salt)
    return okm[:16], okm[16:]


#: The secure element's keyed-hash context (``SoftwareSecureElement.hmac``), repeated here so the
#: platform can compute the same values from its copy of the root key.
SE_HMAC_INFO = b"anju/se/hmac/v1:"
MQTT_PASSWORD_LABEL = "anju/mqtt-password/v1"  # noqa: S105 - a label, not a password


def se_hmac(root_key: bytes, label: str, data: bytes) -> bytes:
    """HMAC-SM3(HKDF-SM3(root key, info = b"anju/se/hmac/v1:" ‖ label, 32), data)."""
    if len(root_key) != ROOT_KEY_BYTES:
        raise ValueError("root key must be 16 bytes")
    key = hkdf_sm3(root_key, length=32, info=SE_HMAC_INFO + label.encode())
    return hmac_sm3(key, data)


def mqtt_password(root_key: bytes, device_id: str) -> str:
    """A device's MQTT broker password: hex of ``se.hmac("anju/mqtt-password/v1", id bytes)``."""
    return se_hmac(root_key, MQTT_PASSWORD_LABEL, bytes.fromhex(check_device_id(device_id))).hex()
