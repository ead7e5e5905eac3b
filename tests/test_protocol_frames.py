"""Frame layouts, topics and plaintext messages: strict bounds, stable error codes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anju.kit.crypto import SM2PrivateKey
from anju.protocol import frames
from anju.protocol.certificates import Certificate
from anju.protocol.errors import CODES, ProtocolError
from anju.protocol.handshake import GatewayHandshake
from anju.protocol.messages import (
    MAX_MESSAGE_BYTES,
    canonical_json,
    decode_message,
    encode_message,
    validate_message,
)
from anju.protocol.topics import (
    PLATFORM_SHARED_SUBSCRIPTION,
    PLATFORM_SUBSCRIPTION,
    down_topic,
    parse_topic,
    up_topic,
)
from tests.vectors import protocol as v

HELLO = v.HELLO_PREFIX + v.HELLO_SIGNATURE
WELCOME = v.WELCOME_PREFIX + v.WELCOME_SIGNATURE
GATEWAY_CERT = Certificate.decode(
    v.GATEWAY_CERT_TBS + len(v.GATEWAY_CERT_SIGNATURE).to_bytes(2, "big") + v.GATEWAY_CERT_SIGNATURE
)


def code(fn: object, *args: object) -> str:
    with pytest.raises(ProtocolError) as exc:
        fn(*args)  # type: ignore[operator]
    return exc.value.code


# --- frames -----------------------------------------------------------------------------------


@pytest.mark.req("L16")
def test_hello_and_welcome_decode() -> None:
    hello = frames.decode_hello(HELLO)
    assert (hello.td_ms, hello.nd, hello.signature) == (v.TD_MS, v.ND, v.HELLO_SIGNATURE)
    assert hello.certificate.subject == v.DEVICE_ID
    assert hello.signed_message == v.HELLO_SIGNED_MESSAGE
    welcome = frames.decode_welcome(WELCOME)
    assert welcome.session_id == v.SESSION_ID
    assert (welcome.tp_ms, welcome.np) == (v.TP_MS, v.NP)
    assert welcome.kp_ciphertext == v.KP_CIPHERTEXT
    assert welcome.signed_message(HELLO) == v.WELCOME_SIGNED_MESSAGE
    data = frames.decode_data(v.CMD_FRAME)
    assert (data.session_id, data.seq, data.time_ms) == (v.SESSION_ID, 1, v.CMD_TIME_MS)
    assert data.header == v.CMD_FRAME[: frames.DATA_HEADER_BYTES]
    assert frames.DATA_HEADER_BYTES == 26


@pytest.mark.req("L16")
def test_size_is_checked_before_anything_else() -> None:
    huge = b"\x07\x07" + bytes(frames.MAX_FRAME_BYTES)
    for decode in (frames.decode_hello, frames.decode_welcome, frames.decode_data):
        assert code(decode, huge) == "frame_too_large"
    assert frames.frame_type(b"\x01\x10" + bytes(frames.MAX_FRAME_BYTES - 2)) == (
        frames.FrameType.DATA
    )


@pytest.mark.req("L16")
def test_version_and_type_codes() -> None:
    assert code(frames.frame_type, b"\x02" + HELLO[1:]) == "unsupported_version"
    assert code(frames.frame_type, b"\x01\x04") == "unknown_frame_type"
    assert code(frames.frame_type, b"\x01") == "frame_malformed"
    assert code(frames.frame_type, "text") == "frame_malformed"
    assert code(frames.decode_hello, WELCOME) == "handshake_failed"  # wrong type in its place
    assert code(frames.decode_welcome, HELLO) == "handshake_failed"
    assert code(frames.decode_data, HELLO) == "frame_malformed"


@pytest.mark.req("L16")
def test_truncated_and_extended_handshake_frames() -> None:
    for n in range(len(HELLO) - 72 - 1):  # shorter than any valid signature tail
        assert code(frames.decode_hello, HELLO[:n]).startswith(("frame_", "cert_")), n
    for n in range(len(WELCOME) - 72 - 1):
        assert code(frames.decode_welcome, WELCOME[:n]).startswith(("frame_", "cert_")), n
    assert code(frames.decode_hello, HELLO + bytes(80)) == "frame_malformed"


@pytest.mark.req("L16")
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700), st.integers(min_value=0, max_value=700))
def test_handshake_decoders_only_raise_protocol_errors(data: bytes, cut: int) -> None:
    gateway = GatewayHandshake(
        GATEWAY_CERT, SM2PrivateKey(v.GATEWAY_PRIVATE), GATEWAY_CERT.public_key, now_ms=lambda: 0
    )
    for candidate in (data, HELLO[:cut] + data, WELCOME[:cut] + data, b"\x01\x01" + data):
        for fn in (
            frames.decode_hello,
            frames.decode_welcome,
            frames.decode_data,
            Certificate.decode,
            gateway.check_hello,
        ):
            with contextlib.suppress(ProtocolError):
                fn(candidate)


# --- topics -----------------------------------------------------------------------------------


@pytest.mark.req("L16", "R15")
def test_topics() -> None:
    assert up_topic(v.DEVICE_ID) == f"anju/v1/dev/{v.DEVICE_ID}/up"
    assert down_topic(v.DEVICE_ID) == f"anju/v1/dev/{v.DEVICE_ID}/down"
    assert parse_topic(up_topic(v.DEVICE_ID)) == (v.DEVICE_ID, "up")
    assert parse_topic(down_topic(v.DEVICE_ID)) == (v.DEVICE_ID, "down")
    assert PLATFORM_SUBSCRIPTION == "anju/v1/dev/+/up"
    assert PLATFORM_SHARED_SUBSCRIPTION == "$share/anju/" + PLATFORM_SUBSCRIPTION


@pytest.mark.req("L16")
@pytest.mark.parametrize(
    "topic",
    [
        f"anju/v2/dev/{v.DEVICE_ID}/up",
        f"/anju/v1/dev/{v.DEVICE_ID}/up",
        f"anju/v1/dev/{v.DEVICE_ID}/up/x",
        f"anju/v1/dev/{v.DEVICE_ID}/sideways",
        f"anju/v1/dev/{v.DEVICE_ID}",
        f"anju/v1/dev/{v.DEVICE_ID.upper()}/up",
        f"anju/v1/dev/{v.DEVICE_ID[:-1]}/up",
        "anju/v1/dev/+/up",
        "anju/v1/dev/#",
        f"anju/v1/dev/{v.DEVICE_ID}/#",
        f"$share/anju/anju/v1/dev/{v.DEVICE_ID}/up",
        "",
    ],
)
def test_bad_topics(topic: str) -> None:
    assert code(parse_topic, topic) == "topic_invalid"


@pytest.mark.req("L16")
def test_building_a_topic_checks_the_id() -> None:
    assert code(up_topic, "+") == "topic_invalid"
    assert code(down_topic, "../x") == "topic_invalid"


# --- messages ---------------------------------------------------------------------------------

GOOD_DEVICE = [
    {"t": "confirm", "th": "ab" * 32},
    {"t": "evt", "id": "e-1", "at": 1, "kind": "door.unlock", "data": {"a": [1, "x", None]}},
    {"t": "state", "at": 1, "battery": 55, "firmware": "1.2.3", "signal": -70},
    {"t": "state", "at": 1, "battery": None, "firmware": "1", "signal": None, "extra": {"k": 1}},
    {"t": "ack", "id": "c1", "ok": True, "code": None},
    {"t": "ack", "id": "c1", "ok": False, "code": "jammed"},
]
GOOD_PLATFORM = [
    {"t": "cmd", "id": "c1", "name": "lock.open", "args": {}, "exp": 5},
    {"t": "rekey"},
]


@pytest.mark.req("L16", "L17")
def test_valid_messages_round_trip_canonically() -> None:
    for m in GOOD_DEVICE:
        raw = encode_message(m, "device")
        assert decode_message(raw, "device") == m
        assert raw == canonical_json(m)
    for m in GOOD_PLATFORM:
        assert decode_message(encode_message(m, "platform"), "platform") == m
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


@pytest.mark.req("L16")
@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"t": "cmd", "id": "c", "name": "x", "args": {}, "exp": 1}, "unknown_message_type"),
        ({"t": "nope"}, "unknown_message_type"),
        ({"id": "x"}, "unknown_message_type"),
        ({"t": "confirm"}, "message_malformed"),
        ({"t": "confirm", "th": "AB" * 32}, "message_malformed"),
        ({"t": "confirm", "th": "ab" * 32, "x": 1}, "message_malformed"),
        ({"t": "evt", "id": "e", "at": -1, "kind": "k", "data": {}}, "message_malformed"),
        ({"t": "evt", "id": "e", "at": True, "kind": "k", "data": {}}, "message_malformed"),
        ({"t": "evt", "id": "e", "at": 1, "kind": "K", "data": {}}, "message_malformed"),
        ({"t": "evt", "id": "e", "at": 1, "kind": "k", "data": []}, "message_malformed"),
        ({"t": "evt", "id": "e", "at": 1, "kind": "k", "data": {"f": 1.5}}, "message_malformed"),
        (
            {"t": "evt", "id": "e", "at": 1, "kind": "k", "data": {"n": 1 << 60}},
            "message_malformed",
        ),
        (
            {"t": "state", "at": 1, "battery": 101, "firmware": "1", "signal": -1},
            "message_malformed",
        ),
        ({"t": "ack", "id": "c", "ok": True, "code": "x"}, "message_malformed"),
        ({"t": "ack", "id": "c", "ok": False, "code": None}, "message_malformed"),
        ([1, 2], "message_malformed"),
    ],
)
def test_invalid_device_messages(message: object, expected: str) -> None:
    assert code(validate_message, message, "device") == expected


@pytest.mark.req("L16")
def test_depth_and_size_limits() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(10):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    m = {"t": "evt", "id": "e", "at": 1, "kind": "k", "data": deep}
    assert code(encode_message, m, "device") == "message_malformed"
    big = {"t": "evt", "id": "e", "at": 1, "kind": "k", "data": {"s": "x" * MAX_MESSAGE_BYTES}}
    assert code(encode_message, big, "device") == "message_too_large"
    assert code(decode_message, b" " * (MAX_MESSAGE_BYTES + 1), "device") == "message_too_large"


@pytest.mark.req("L16")
@pytest.mark.parametrize(
    "raw",
    [
        b'{"t": "rekey"}',  # not canonical: space
        b'{"t":"rekey","t":"rekey"}',  # duplicate key
        b'{"t":"rekey"}\n',
        b"\xff",
        b"[",
        b'{"t":NaN}',
        b'{"t":"cmd","id":"c","name":"x","args":{"v":1.0},"exp":1}',
        b'{"args":{},"exp":1,"id":"c","name":"x","t":"cmd","n":' + b"9" * 5000 + b"}",
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_non_canonical_or_invalid_json_is_refused(raw: bytes) -> None:
    assert code(decode_message, raw, "platform") in {"message_malformed", "unknown_message_type"}


@pytest.mark.req("L16")
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_message_decoder_only_raises_protocol_errors(raw: bytes) -> None:
    for sender in ("device", "platform"):
        with contextlib.suppress(ProtocolError):
            decode_message(raw, sender)  # type: ignore[arg-type]


@pytest.mark.req("L16")
def test_every_code_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")
    for c in CODES:
        assert f"`{c}`" in doc, c
