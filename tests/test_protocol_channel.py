"""DATA frames on an established session: integrity, sequence, time, duplicates and replays."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anju.kit.crypto import sm4_gcm_encrypt
from anju.protocol.channel import (
    Direction,
    DuplicateFrame,
    SecureChannel,
    SessionTable,
    data_nonce,
)
from anju.protocol.errors import ProtocolError
from anju.protocol.frames import MAX_FRAME_BYTES, data_header
from tests.vectors import protocol as v

OTHER_DEVICE = "ffeeddccbbaa99887766554433221100"


class Clock:
    def __init__(self) -> None:
        self.ms = v.TP_MS

    def __call__(self) -> int:
        return self.ms


def pair(
    clock: Clock | None = None, device_id: str = v.DEVICE_ID, session_id: bytes = v.SESSION_ID
) -> tuple[SecureChannel, SecureChannel]:
    clock = clock or Clock()
    device = SecureChannel(device_id, session_id, v.K_UP, v.K_DOWN, Direction.UP, clock)
    platform = SecureChannel(device_id, session_id, v.K_DOWN, v.K_UP, Direction.DOWN, clock)
    return device, platform


def evt(i: int) -> dict[str, object]:
    return {"t": "evt", "id": f"e{i}", "at": v.TP_MS, "kind": "door.open", "data": {"n": i}}


def code(fn: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(ProtocolError) as exc:
        fn(*args, **kwargs)  # type: ignore[operator]
    return exc.value.code


@pytest.mark.req("L16", "L13")
def test_frames_flow_and_are_counted() -> None:
    device, platform = pair()
    for i in range(5):
        assert platform.open(device.seal(evt(i)))["id"] == f"e{i}"
    assert platform.counters.accepted == 5
    assert platform.received_seq == device.sent_seq == 5
    assert device.counters.sent == 5


@pytest.mark.req("L16")
def test_identical_redelivery_is_a_benign_duplicate() -> None:
    device, platform = pair()
    frame = device.seal(evt(1))
    platform.open(frame)
    with pytest.raises(DuplicateFrame):
        platform.open(frame)
    assert platform.counters.duplicates == 1
    assert platform.counters.replays == 0
    assert platform.open(device.seal(evt(2)))["id"] == "e2"  # the session goes on


@pytest.mark.req("L16")
def test_older_frames_are_replays() -> None:
    device, platform = pair()
    first, second = device.seal(evt(1)), device.seal(evt(2))
    platform.open(first)
    platform.open(second)
    assert code(platform.open, first) == "replay"
    assert platform.counters.replays == 1
    assert platform.counters.duplicates == 0


@pytest.mark.req("L16")
def test_reordered_frames_are_refused() -> None:
    device, platform = pair()
    f1, f2, f3 = (device.seal(evt(i)) for i in range(3))
    platform.open(f1)
    platform.open(f3)
    assert code(platform.open, f2) == "replay"
    assert platform.counters.accepted == 2


@pytest.mark.req("L16", "L13")
def test_every_bit_flip_is_refused_and_does_not_disturb_the_session() -> None:
    device, platform = pair()
    frame = device.seal(evt(1))
    codes = set()
    for i in range(len(frame)):
        for mask in (0x01, 0x80):
            tampered = bytearray(frame)
            tampered[i] ^= mask
            codes.add(code(platform.open, bytes(tampered)))
    assert codes <= {"bad_tag", "wrong_session", "unsupported_version", "unknown_frame_type"}
    assert "bad_tag" in codes
    assert platform.counters.accepted == 0
    assert platform.open(frame)["id"] == "e1"  # the genuine frame still goes through


@pytest.mark.req("L16", "R16")
def test_frame_moved_to_another_device_fails() -> None:
    # Same session id and keys, another device id (AAD): the tag does not match.
    device, _ = pair()
    _, other_platform = pair(device_id=OTHER_DEVICE)
    assert code(other_platform.open, device.seal(evt(1))) == "bad_tag"
    assert other_platform.counters.bad_tag == 1
    # Routed by topic: a frame on another device's topic is refused before any crypto.
    _, platform = pair()
    table = SessionTable()
    table.install(platform)
    assert code(table.open, OTHER_DEVICE, device.seal(evt(2))) == "wrong_session"
    assert code(platform.open, device.seal(evt(3)), device_id=OTHER_DEVICE) == "wrong_device"
    assert platform.counters.wrong_device == 1


@pytest.mark.req("L16")
def test_frame_from_another_session() -> None:
    device, _ = pair(session_id=b"\x00" * 8)
    _, platform = pair()
    assert code(platform.open, device.seal(evt(1))) == "wrong_session"
    assert platform.counters.wrong_session == 1


@pytest.mark.req("L16")
def test_direction_is_bound_a_device_cannot_reflect_frames() -> None:
    device, platform = pair()
    # A downlink frame fed back to the platform (reflection) does not authenticate.
    down = platform.seal({"t": "rekey"})
    assert code(platform.open, down) == "bad_tag"
    up = device.seal(evt(1))
    assert code(device.open, up) == "bad_tag"


@pytest.mark.req("L16")
def test_time_window() -> None:
    clock = Clock()
    device, platform = pair(clock)
    early = device.seal(evt(1))
    clock.ms += 300_000
    platform.open(early)  # exactly at the edge
    late = device.seal(evt(2))
    clock.ms += 300_001
    assert code(platform.open, late) == "stale_time"
    assert platform.counters.stale == 1
    clock.ms -= 2 * 300_001
    future = device.seal(evt(3))
    clock.ms += 300_001
    assert code(platform.open, future) == "stale_time"


@pytest.mark.req("L16")
def test_oversize_and_garbage_frames() -> None:
    _, platform = pair()
    assert code(platform.open, b"\x01\x10" + bytes(MAX_FRAME_BYTES)) == "frame_too_large"
    assert code(platform.open, b"") == "frame_malformed"
    assert code(platform.open, b"\x02\x10" + bytes(40)) == "unsupported_version"
    assert code(platform.open, b"\x01\x11" + bytes(40)) == "unknown_frame_type"
    assert code(platform.open, b"\x01\x10" + v.SESSION_ID + bytes(20)) == "frame_malformed"
    assert platform.counters.malformed == 5


@pytest.mark.req("L16")
def test_authentic_but_invalid_content_is_refused_and_consumes_the_sequence() -> None:
    clock = Clock()
    _, platform = pair(clock)
    for seq, body in enumerate([b'{"t":"cmd"}', b'{"t": "evt"}', b"\xff"], start=1):
        header = data_header(v.SESSION_ID, seq, clock.ms)
        aad = header + bytes.fromhex(v.DEVICE_ID)
        frame = header + sm4_gcm_encrypt(v.K_UP, data_nonce(Direction.UP, seq), body, aad)
        assert code(platform.open, frame) in {"unknown_message_type", "message_malformed"}
    assert platform.counters.malformed == 3
    assert platform.received_seq == 3


@pytest.mark.req("L16")
def test_senders_can_only_send_their_own_message_types() -> None:
    device, platform = pair()
    assert code(device.seal, {"t": "cmd", "id": "c", "name": "x", "args": {}, "exp": 1}) == (
        "unknown_message_type"
    )
    assert code(platform.seal, evt(1)) == "unknown_message_type"
    assert device.sent_seq == 0


@pytest.mark.req("L14")
def test_closed_session_refuses_everything() -> None:
    device, platform = pair()
    frame = device.seal(evt(1))
    platform.close()
    assert code(platform.open, frame) == "session_closed"
    assert code(platform.seal, {"t": "rekey"}) == "session_closed"


@pytest.mark.req("L16")
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=120))
def test_arbitrary_bytes_only_ever_raise_protocol_errors(data: bytes, cut: int) -> None:
    device, platform = pair()
    genuine = device.seal(evt(1))
    for candidate in (data, b"\x01\x10" + data, genuine[:cut] + data, genuine[: cut % 42]):
        with contextlib.suppress(ProtocolError):
            platform.open(candidate)
