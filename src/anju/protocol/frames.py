"""Binary frames of the device protocol: HELLO, WELCOME, RESET and DATA (layouts in
docs/protocol.md).

Every frame starts with version (u8 = 1) ‖ type (u8). Decoding is strict and bounded: a frame
longer than :data:`MAX_FRAME_BYTES` is refused before any parsing, and every length is checked.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from anju.kit.crypto import sm3
from anju.protocol.certificates import MAX_SIGNATURE_BYTES, Certificate
from anju.protocol.errors import ProtocolError

VERSION = 1
MAX_FRAME_BYTES = 65536
NONCE_BYTES = 16
SESSION_ID_BYTES = 8
KP_BYTES = 32
MAX_KP_CIPHERTEXT_BYTES = 255
MIN_SIGNATURE_BYTES = 8
TAG_BYTES = 16
HELLO_CONTEXT = b"anju/hello/v1"
WELCOME_CONTEXT = b"anju/welcome/v1"
RESET_CONTEXT = b"anju/reset/v1"

_HEADER = struct.Struct(">BB")
DATA_HEADER = struct.Struct(">BB8sQQ")  # version, type, session id, seq, time (ms)
DATA_HEADER_BYTES = DATA_HEADER.size  # 26
_U64 = struct.Struct(">Q")


class FrameType(IntEnum):
    HELLO = 0x01
    WELCOME = 0x02
    RESET = 0x03
    DATA = 0x10


def _malformed(message: str) -> ProtocolError:
    return ProtocolError("frame_malformed", f"frame malformed: {message}")


def frame_type(frame: bytes) -> FrameType:
    """Check size, version and type of a frame; the type on success."""
    if not isinstance(frame, bytes):
        raise _malformed("not bytes")
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError("frame_too_large", f"frame longer than {MAX_FRAME_BYTES} bytes")
    if len(frame) < _HEADER.size:
        raise _malformed("shorter than its header")
    version, kind = _HEADER.unpack_from(frame)
    if version != VERSION:
        raise ProtocolError("unsupported_version", f"frame version {version} is not supported")
    try:
        return FrameType(kind)
    except ValueError:
        raise ProtocolError("unknown_frame_type", f"unknown frame type 0x{kind:02x}") from None


def _expect(frame: bytes, kind: FrameType) -> None:
    if frame_type(frame) != kind:
        raise ProtocolError("handshake_failed", f"expected a {kind.name} frame")


def _certificate_at(frame: bytes, offset: int) -> tuple[Certificate, int]:
    cert, length = Certificate.decode_prefix(frame[offset:])  # raises with a precise cert_* code
    return cert, offset + length


def _signature_rest(frame: bytes, offset: int) -> bytes:
    signature = frame[offset:]
    if not MIN_SIGNATURE_BYTES <= len(signature) <= MAX_SIGNATURE_BYTES:
        raise _malformed("signature length out of range")
    return signature


# --- HELLO ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """A decoded HELLO (device → platform). Not yet verified."""

    certificate: Certificate
    td_ms: int
    nd: bytes
    signature: bytes
    raw: bytes

    @property
    def signed_message(self) -> bytes:
        """What the device signed: ``b"anju/hello/v1" ‖ SM3(frame before the signature)``."""
        return hello_signed_message(self.raw[: len(self.raw) - len(self.signature)])


def hello_prefix(certificate: bytes, td_ms: int, nd: bytes) -> bytes:
    """HELLO bytes before the signature."""
    if len(nd) != NONCE_BYTES:
        raise ValueError("Nd must be 16 bytes")
    return _HEADER.pack(VERSION, FrameType.HELLO) + certificate + _U64.pack(td_ms) + nd


def hello_signed_message(prefix: bytes) -> bytes:
    """The message the device key signs for a HELLO with this prefix."""
    return HELLO_CONTEXT + sm3(prefix)


def decode_hello(frame: bytes) -> Hello:
    """Parse a HELLO frame (strict)."""
    _expect(frame, FrameType.HELLO)
    cert, offset = _certificate_at(frame, _HEADER.size)
    if len(frame) < offset + 8 + NONCE_BYTES:
        raise _malformed("HELLO truncated")
    (td_ms,) = _U64.unpack_from(frame, offset)
    nd = frame[offset + 8 : offset + 8 + NONCE_BYTES]
    signature = _signature_rest(frame, offset + 8 + NONCE_BYTES)
    return Hello(cert, td_ms, nd, signature, frame)


# --- WELCOME ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Welcome:
    """A decoded WELCOME (platform → device). Not yet verified."""

    session_id: bytes
    certificate: Certificate
    tp_ms: int
    np: bytes
    kp_ciphertext: bytes
    signature: bytes
    raw: bytes

    def signed_message(self, hello: bytes) -> bytes:
        """What the gateway signed, given the HELLO frame it answers."""
        return welcome_signed_message(hello, self.raw[: len(self.raw) - len(self.signature)])


def welcome_prefix(
    session_id: bytes, certificate: bytes, tp_ms: int, np: bytes, kp_ciphertext: bytes
) -> bytes:
    """WELCOME bytes before the signature (C is length-prefixed with a u16)."""
    if len(session_id) != SESSION_ID_BYTES or len(np) != NONCE_BYTES:
        raise ValueError("session id must be 8 bytes and Np 16 bytes")
    if not 1 <= len(kp_ciphertext) <= MAX_KP_CIPHERTEXT_BYTES:
        raise ValueError("Kp ciphertext length out of range")
    return b"".join(
        (
            _HEADER.pack(VERSION, FrameType.WELCOME),
            session_id,
            certificate,
            _U64.pack(tp_ms),
            np,
            len(kp_ciphertext).to_bytes(2, "big"),
            kp_ciphertext,
        )
    )


def welcome_signed_message(hello: bytes, prefix: bytes) -> bytes:
    """The message the gateway key signs: ``b"anju/welcome/v1" ‖ SM3(HELLO ‖ prefix)``."""
    return WELCOME_CONTEXT + sm3(hello + prefix)


def decode_welcome(frame: bytes) -> Welcome:
    """Parse a WELCOME frame (strict)."""
    _expect(frame, FrameType.WELCOME)
    offset = _HEADER.size + SESSION_ID_BYTES
    if len(frame) < offset:
        raise _malformed("WELCOME truncated")
    session_id = frame[_HEADER.size : offset]
    cert, offset = _certificate_at(frame, offset)
    if len(frame) < offset + 8 + NONCE_BYTES + 2:
        raise _malformed("WELCOME truncated")
    (tp_ms,) = _U64.unpack_from(frame, offset)
    offset += 8
    np = frame[offset : offset + NONCE_BYTES]
    offset += NONCE_BYTES
    c_len = int.from_bytes(frame[offset : offset + 2], "big")
    offset += 2
    if not 1 <= c_len <= MAX_KP_CIPHERTEXT_BYTES or len(frame) < offset + c_len:
        raise _malformed("Kp ciphertext length out of range")
    kp_ciphertext = frame[offset : offset + c_len]
    signature = _signature_rest(frame, offset + c_len)
    return Welcome(session_id, cert, tp_ms, np, kp_ciphertext, signature, frame)


def transcript_hash(hello: bytes, welcome: bytes) -> bytes:
    """SM3(HELLO frame ‖ WELCOME frame), both complete; CONFIRM carries it in hex."""
    return sm3(hello + welcome)


# --- RESET ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reset:
    """A decoded RESET (platform → device): "this session is unknown here, handshake again".
    Not yet verified."""

    session_id: bytes
    time_ms: int
    signature: bytes
    raw: bytes

    def signed_message(self, device_id: str) -> bytes:
        """What the gateway signed for ``device_id``."""
        return reset_signed_message(device_id, self.raw[: len(self.raw) - len(self.signature)])


def reset_prefix(session_id: bytes, time_ms: int) -> bytes:
    """RESET bytes before the signature: header ‖ session id ‖ time."""
    if len(session_id) != SESSION_ID_BYTES:
        raise ValueError("session id must be 8 bytes")
    return _HEADER.pack(VERSION, FrameType.RESET) + session_id + _U64.pack(time_ms)


def reset_signed_message(device_id: str, prefix: bytes) -> bytes:
    """``b"anju/reset/v1" ‖ SM3(device id (ASCII) ‖ prefix)``: bound to one device."""
    return RESET_CONTEXT + sm3(device_id.encode("ascii") + prefix)


def decode_reset(frame: bytes) -> Reset:
    """Parse a RESET frame (strict)."""
    if frame_type(frame) != FrameType.RESET:
        raise _malformed("expected a RESET frame")
    offset = _HEADER.size + SESSION_ID_BYTES + 8
    if len(frame) < offset:
        raise _malformed("RESET truncated")
    session_id = frame[_HEADER.size : _HEADER.size + SESSION_ID_BYTES]
    (time_ms,) = _U64.unpack_from(frame, _HEADER.size + SESSION_ID_BYTES)
    return Reset(session_id, time_ms, _signature_rest(frame, offset), frame)


# --- DATA -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFrame:
    """A decoded DATA frame: header fields, the 26 header bytes (part of the AAD) and ct‖tag."""

    session_id: bytes
    seq: int
    time_ms: int
    header: bytes
    sealed: bytes


def data_header(session_id: bytes, seq: int, time_ms: int) -> bytes:
    """The 26 header bytes of a DATA frame."""
    return DATA_HEADER.pack(VERSION, FrameType.DATA, session_id, seq, time_ms)


def decode_data(frame: bytes) -> DataFrame:
    """Split a DATA frame into its header and sealed part (no cryptography here)."""
    if frame_type(frame) != FrameType.DATA:
        raise _malformed("expected a DATA frame")
    if len(frame) < DATA_HEADER_BYTES + TAG_BYTES:
        raise _malformed("DATA frame truncated")
    _, _, session_id, seq, time_ms = DATA_HEADER.unpack_from(frame)
    return DataFrame(session_id, seq, time_ms, frame[:DATA_HEADER_BYTES], frame[DATA_HEADER_BYTES:])
