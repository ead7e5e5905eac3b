"""RESET frames (a gateway tells a device its session is unknown) and evt_ack messages."""

from __future__ import annotations

import pytest

from anju.kit.crypto import SM2PrivateKey
from anju.protocol import frames
from anju.protocol.errors import ProtocolError
from anju.protocol.messages import MAX_ACK_IDS, decode_message, encode_message
from anju.protocol.reset import check_reset, reset_frame

pytestmark = pytest.mark.req("L14", "L16", "R2")

DEVICE = "00112233445566778899aabbccddeeff"
OTHER = "ffeeddccbbaa99887766554433221100"
SESSION = bytes.fromhex("00a7000102030405")
NOW = 1_790_000_000_000
WINDOW = 300_000
GATEWAY = SM2PrivateKey.generate()


def check(
    frame: bytes, *, device: str = DEVICE, now: int = NOW, key: SM2PrivateKey = GATEWAY
) -> str:
    try:
        check_reset(
            frame,
            device_id=device,
            sessions=[(SESSION, key.public_key)],
            now_ms=now,
            window_ms=WINDOW,
        )
    except ProtocolError as exc:
        return exc.code
    return "ok"


def test_a_reset_verifies_for_its_device_and_session_only() -> None:
    frame = reset_frame(GATEWAY, DEVICE, SESSION, NOW)
    assert frames.frame_type(frame) is frames.FrameType.RESET
    assert frame[:2] == b"\x01\x03"
    assert frame[2:10] == SESSION
    assert check(frame) == "ok"
    assert check(frame, device=OTHER) == "bad_signature"  # bound to the device id
    assert check(frame, key=SM2PrivateKey.generate()) == "bad_signature"  # another gateway key
    other_session = reset_frame(GATEWAY, DEVICE, bytes(8), NOW)
    assert check(other_session) == "wrong_session"  # not the device's live session


def test_a_stale_or_tampered_reset_is_refused() -> None:
    frame = reset_frame(GATEWAY, DEVICE, SESSION, NOW)
    assert check(frame, now=NOW + WINDOW + 1) == "stale_time"
    assert check(frame, now=NOW - WINDOW - 1) == "stale_time"
    assert check(frame, now=NOW + WINDOW) == "ok"
    later = bytearray(frame)
    later[17] ^= 0x01  # the time field: no longer what was signed
    assert check(bytes(later), now=NOW + 256) == "bad_signature"
    for n in range(len(frame) - 72):  # cut anywhere before a plausible signature
        assert check(frame[:n]) in {"frame_malformed", "unknown_frame_type"}, n


def test_evt_ack_carries_one_to_256_event_ids() -> None:
    ids = [f"ev-{i}" for i in range(MAX_ACK_IDS)]
    raw = encode_message({"t": "evt_ack", "ids": ids}, "platform")
    assert decode_message(raw, "platform")["ids"] == ids
    for bad in ([], [*ids, "one-more"], ["not an id"], [7], "ev-1"):
        with pytest.raises(ProtocolError) as exc:
            encode_message({"t": "evt_ack", "ids": bad}, "platform")
        assert exc.value.code == "message_malformed", bad
    with pytest.raises(ProtocolError) as exc:  # the platform acknowledges; a device cannot
        encode_message({"t": "evt_ack", "ids": ["ev-1"]}, "device")
    assert exc.value.code == "unknown_message_type"
