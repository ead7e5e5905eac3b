"""The secure channel after a handshake: SM4-GCM DATA frames with sequence and time checks.

Nonce = direction byte (0x01 up, 0x02 down) ‖ 3 zero bytes ‖ seq (u64); AAD = the 26 header
bytes ‖ the 16 device id bytes. A receiver accepts a frame only if it authenticates, its seq is
greater than the last accepted one and its time is within the window of the receiver's clock.
An identical copy of the last accepted frame is a benign duplicate (MQTT QoS 1 redelivery):
``open`` raises :class:`DuplicateFrame`, which the caller drops without alarm.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from anju.errors import IntegrityError
from anju.kit.crypto import sm4_gcm_decrypt, sm4_gcm_encrypt
from anju.protocol.errors import ProtocolError
from anju.protocol.frames import SESSION_ID_BYTES, data_header, decode_data
from anju.protocol.messages import Sender, decode_message, encode_message
from anju.protocol.topics import check_device_id

DEFAULT_TIME_WINDOW_MS = 300_000
DEFAULT_REKEY_AFTER_FRAMES = 1 << 20
DEFAULT_REKEY_AFTER_MS = 3_600_000
_MAX_SEQ = (1 << 64) - 1


class Direction(IntEnum):
    """Direction of travel of a frame; also the first nonce byte."""

    UP = 0x01  # device -> platform
    DOWN = 0x02  # platform -> device


class DuplicateFrame(ProtocolError):
    """An identical redelivery of the last accepted frame: drop it silently."""

    def __init__(self) -> None:
        super().__init__("duplicate", "duplicate of the last accepted frame")


def data_nonce(direction: Direction, seq: int) -> bytes:
    """The 12-byte SM4-GCM nonce of a DATA frame."""
    return bytes([direction]) + b"\x00\x00\x00" + seq.to_bytes(8, "big")


@dataclass
class ChannelCounters:
    """What a receiver saw; the platform exports these for anomaly detection (L16)."""

    accepted: int = 0
    duplicates: int = 0
    replays: int = 0
    bad_tag: int = 0
    stale: int = 0
    malformed: int = 0
    wrong_device: int = 0
    wrong_session: int = 0
    sent: int = 0


class SecureChannel:
    """One side of a session. ``direction`` is the direction this side *sends* in."""

    def __init__(
        self,
        device_id: str,
        session_id: bytes,
        send_key: bytes,
        receive_key: bytes,
        direction: Direction,
        clock: Callable[[], int],
        *,
        time_window_ms: int = DEFAULT_TIME_WINDOW_MS,
        rekey_after_frames: int = DEFAULT_REKEY_AFTER_FRAMES,
        rekey_after_ms: int = DEFAULT_REKEY_AFTER_MS,
    ) -> None:
        if len(session_id) != SESSION_ID_BYTES or len(send_key) != 16 or len(receive_key) != 16:
            raise ValueError("session id must be 8 bytes and keys 16 bytes")
        self.device_id = check_device_id(device_id)
        self.session_id = session_id
        self.direction = direction
        self.counters = ChannelCounters()
        self.closed = False
        self._device_id_bytes = bytes.fromhex(device_id)
        self._send_key = send_key
        self._receive_key = receive_key
        self._clock = clock
        self._window = time_window_ms
        self._rekey_frames = rekey_after_frames
        self._rekey_ms = rekey_after_ms
        self._started_ms = clock()
        self._sent_seq = 0
        self._received_seq = 0
        self._last_frame = b""
        self._sender: Sender = "device" if direction == Direction.UP else "platform"
        self._peer: Sender = "platform" if direction == Direction.UP else "device"
        self._receive_direction = Direction.DOWN if direction == Direction.UP else Direction.UP

    @property
    def sent_seq(self) -> int:
        """Sequence number of the last frame sealed."""
        return self._sent_seq

    @property
    def received_seq(self) -> int:
        """Sequence number of the last frame accepted."""
        return self._received_seq

    @property
    def needs_rekey(self) -> bool:
        """True once either direction reached the frame threshold or the session its age limit."""
        frames = max(self._sent_seq, self._received_seq)
        return frames >= self._rekey_frames or self._clock() - self._started_ms >= self._rekey_ms

    def close(self) -> None:
        """End the session (replaced by a newer one); its keys are dropped."""
        self.closed = True
        self._send_key = self._receive_key = b""

    def _check_open(self) -> None:
        if self.closed:
            raise ProtocolError("session_closed", "this session has ended")

    def seal(self, message: dict[str, Any]) -> bytes:
        """Encrypt one message into a DATA frame with the next sequence number."""
        self._check_open()
        plaintext = encode_message(message, self._sender)
        if self._sent_seq >= _MAX_SEQ:
            raise ProtocolError("session_closed", "sequence numbers exhausted; rekey")
        seq = self._sent_seq + 1
        header = data_header(self.session_id, seq, self._clock())
        sealed = sm4_gcm_encrypt(
            self._send_key,
            data_nonce(self.direction, seq),
            plaintext,
            header + self._device_id_bytes,
        )
        self._sent_seq = seq
        self.counters.sent += 1
        return header + sealed

    def open(self, frame: bytes, *, device_id: str | None = None) -> dict[str, Any]:
        """Authenticate and decode a received DATA frame (``device_id``: from the MQTT topic)."""
        self._check_open()
        counters = self.counters
        if device_id is not None and device_id != self.device_id:
            counters.wrong_device += 1
            raise ProtocolError("wrong_device", "frame arrived for another device")
        try:
            data = decode_data(frame)
        except ProtocolError:
            counters.malformed += 1
            raise
        if data.session_id != self.session_id:
            counters.wrong_session += 1
            raise ProtocolError("wrong_session", "frame belongs to another session")
        if self._last_frame and hmac.compare_digest(frame, self._last_frame):
            counters.duplicates += 1
            raise DuplicateFrame()
        try:
            plaintext = sm4_gcm_decrypt(
                self._receive_key,
                data_nonce(self._receive_direction, data.seq),
                data.sealed,
                data.header + self._device_id_bytes,
            )
        except IntegrityError:
            counters.bad_tag += 1
            raise ProtocolError("bad_tag", "DATA frame did not authenticate") from None
        if data.seq <= self._received_seq:
            counters.replays += 1
            raise ProtocolError("replay", "sequence number not above the last accepted one")
        if abs(data.time_ms - self._clock()) > self._window:
            counters.stale += 1
            raise ProtocolError("stale_time", "frame time outside the accepted window")
        # Authentic and fresh: the sequence number is consumed even if the content is refused.
        self._received_seq = data.seq
        self._last_frame = frame
        try:
            message = decode_message(plaintext, self._peer)
        except ProtocolError:
            counters.malformed += 1
            raise
        counters.accepted += 1
        return message


class SessionTable:
    """The platform's current session per device; a confirmed new session replaces the old."""

    def __init__(self) -> None:
        self._sessions: dict[str, SecureChannel] = {}

    def get(self, device_id: str) -> SecureChannel | None:
        """The current session of a device, if any."""
        return self._sessions.get(device_id)

    def install(self, channel: SecureChannel) -> SecureChannel | None:
        """Make ``channel`` current for its device; the previous one is closed and returned."""
        previous = self._sessions.get(channel.device_id)
        self._sessions[channel.device_id] = channel
        if previous is not None and previous is not channel:
            previous.close()
        return previous

    def remove(self, device_id: str) -> None:
        """Forget (and close) a device's session, e.g. on disconnect or revocation."""
        channel = self._sessions.pop(device_id, None)
        if channel is not None:
            channel.close()

    def open(self, device_id: str, frame: bytes) -> dict[str, Any]:
        """Route an uplink DATA frame from ``device_id``'s topic to its current session."""
        channel = self._sessions.get(device_id)
        if channel is None:
            raise ProtocolError("wrong_session", "no session for this device")
        return channel.open(frame, device_id=device_id)

    def __len__(self) -> int:
        return len(self._sessions)

    def current(self) -> dict[str, bytes]:
        """Device id → id of its current session (a snapshot)."""
        return {device_id: c.session_id for device_id, c in self._sessions.items()}
