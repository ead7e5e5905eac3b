"""RESET: a gateway that does not know a device's session tells the device to handshake again.

After a gateway process restarts (or a session was dropped), a device would otherwise keep
sending DATA frames into a session nobody holds until its downlink-silence rekey. The gateway
answers such a frame with a RESET naming the session, signed with the gateway key; the device
verifies it with the gateway key it authenticated in that session's WELCOME and starts a new
handshake at once. A RESET grants nothing: the worst a replayed one can do is cause one
handshake, and only for a session that is still the device's current one.
"""

from __future__ import annotations

from collections.abc import Iterable

from anju.kit.crypto import SM2PublicKey
from anju.kit.keyring import Signer
from anju.protocol.errors import ProtocolError
from anju.protocol.frames import decode_reset, reset_prefix, reset_signed_message
from anju.protocol.topics import check_device_id


def reset_frame(signer: Signer, device_id: str, session_id: bytes, now_ms: int) -> bytes:
    """The RESET frame for ``device_id``'s session ``session_id``, signed by the gateway key."""
    prefix = reset_prefix(session_id, now_ms)
    return prefix + signer.sign(reset_signed_message(check_device_id(device_id), prefix))


def check_reset(
    frame: bytes,
    *,
    device_id: str,
    sessions: Iterable[tuple[bytes, SM2PublicKey]],
    now_ms: int,
    window_ms: int,
) -> bytes:
    """Verify a RESET against the device's live sessions ((session id, gateway key) pairs from
    their WELCOMEs); the session id it names. Raises ProtocolError: ``wrong_session`` (not a
    live session of this device), ``stale_time``, ``bad_signature``."""
    reset = decode_reset(frame)
    key = next((k for sid, k in sessions if sid == reset.session_id), None)
    if key is None:
        raise ProtocolError("wrong_session", "RESET names no live session of this device")
    if abs(reset.time_ms - now_ms) > window_ms:
        raise ProtocolError("stale_time", "RESET time outside the accepted window")
    if not key.verify(reset.signed_message(device_id), reset.signature):
        raise ProtocolError("bad_signature", "RESET signature does not verify")
    return reset.session_id
