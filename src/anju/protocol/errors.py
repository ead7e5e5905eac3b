"""Protocol errors with stable codes a device maker can rely on (listed in docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from anju.errors import IntegrityError

#: Every code this package raises, with a one-line meaning (the documentation table is built
#: from the same list, and a test checks that nothing outside it is ever raised).
CODES: dict[str, str] = {
    # certificates
    "cert_malformed": "certificate bytes do not follow the format",
    "cert_bad_signature": "certificate signature does not verify under the issuer key",
    "cert_wrong_issuer": "certificate names another issuer key",
    "cert_expired": "now is after not_after",
    "cert_not_yet_valid": "now is before not_before",
    "cert_wrong_kind": "a certificate of another kind (device, gateway, firmware) than required",
    # topics
    "topic_invalid": "MQTT topic is not an anju device topic",
    # frames
    "frame_too_large": "frame longer than 65536 bytes (rejected before parsing)",
    "frame_malformed": "frame bytes do not follow the layout",
    "unsupported_version": "frame version is not 1",
    "unknown_frame_type": "frame type is not HELLO, WELCOME or DATA",
    # handshake
    "handshake_failed": "handshake message out of place, or the peer could not be authenticated",
    "bad_signature": "HELLO or WELCOME signature does not verify",
    "replay": "a nonce or sequence number seen before",
    "stale_time": "timestamp outside the accepted window",
    "device_rejected": "the platform does not know the device or has revoked it",
    "key_confirmation_failed": "CONFIRM missing, or its transcript hash is wrong",
    # data
    "bad_tag": "DATA frame did not authenticate (tampered, wrong key, wrong device)",
    "wrong_device": "frame addressed to another device",
    "wrong_session": "frame of another (or an ended) session",
    "duplicate": "identical redelivery of the last accepted frame (benign)",
    "session_closed": "the session has been replaced or closed",
    # messages
    "message_malformed": "plaintext is not a canonical JSON object of the right shape",
    "message_too_large": "plaintext longer than 16384 bytes",
    "unknown_message_type": "message type 't' is not one this direction accepts",
    # firmware packages
    "fw_malformed": "firmware package or manifest bytes do not follow the format",
    "fw_too_large": "firmware image longer than the limit (4 MiB)",
    "fw_bad_signer": "signer certificate is not a firmware certificate of the trusted CA for "
    "this product (wrong issuer, kind or product, bad signature, not yet valid)",
    "fw_signer_expired": "signer certificate has expired",
    "fw_bad_signature": "manifest signature does not verify under the signer key",
    "fw_digest_mismatch": "image size or SM3 digest differs from the manifest",
    "fw_wrong_product": "package is for another product",
    "fw_downgrade": "package version is older than the installed one",
    "fw_incompatible": "installed version is below the package's min_from",
    # access control
    "access_malformed": "credential box, eKey token or signed record does not follow the format",
    "access_bad_signer": "signer certificate is not an ACCESS certificate of the trusted CA",
    "access_bad_signature": "credential, eKey token or record signature does not verify",
    "access_wrong_device": "issued for (or naming) another lock or credential id",
    "access_bad_proof": "the eKey holder's signature does not answer the lock's challenge",
    "access_not_yet_valid": "before the eKey's validity window",
    "access_expired": "after the eKey's validity window",
    "access_outside_schedule": "outside the eKey's recurring schedule",
}


class ProtocolError(IntegrityError):
    """A device-protocol check failed; ``code`` says which (one of :data:`CODES`)."""

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown protocol error code {code!r}")
        super().__init__(message, details=details)
        # Instance-level code: the HTTP error model and callers see the precise reason.
        self.code = code  # type: ignore[misc]


class CertificateError(ProtocolError):
    """A certificate could not be decoded or verified."""
