"""Compact binary certificates for devices and the gateway, signed by the device CA (SM2).

Layout (big-endian; see docs/protocol.md): ``b"ADC1"`` ‖ serial(16) ‖ kind(u8) ‖ lp8(subject) ‖
lp8(se_id) ‖ lp8(product) ‖ not_before(u64) ‖ not_after(u64) ‖ public key x‖y(64) ‖
issuer_key_id(8) — the signed part (``tbs``) — then u16 signature length ‖ DER signature.
``lp8`` is a one-byte length and UTF-8 bytes. Decoding is strict: every field is checked, and
nothing may precede, follow or be missing.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, replace
from enum import IntEnum

from anju.errors import IntegrityError
from anju.kit.crypto import SM2PublicKey, random_bytes, sm3
from anju.kit.keyring import Signer
from anju.protocol.errors import CertificateError

MAGIC = b"ADC1"
SERIAL_BYTES = 16
ISSUER_KEY_ID_BYTES = 8
PUBLIC_KEY_BYTES = 64
MAX_CERTIFICATE_BYTES = 512
MAX_SIGNATURE_BYTES = 72  # DER SEQUENCE of two INTEGERs of at most 33 bytes
_U64_MAX = (1 << 64) - 1
_TIMES = struct.Struct(">QQ")

_HEX_ID = re.compile(r"[0-9a-f]{32}")
_PRODUCT = re.compile(r"[a-z0-9-]{1,64}")
_GATEWAY_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")


class CertKind(IntEnum):
    DEVICE = 1
    GATEWAY = 2
    FIRMWARE = 3  # a firmware signing key (docs/protocol.md, "Firmware packages")
    ACCESS = 4  # the platform's access key: credentials and eKeys (docs/protocol.md)


def issuer_key_id(issuer: SM2PublicKey) -> bytes:
    """The 8-byte id of an issuer key: SM3(SubjectPublicKeyInfo DER)[:8]."""
    return sm3(issuer.to_der())[:ISSUER_KEY_ID_BYTES]


def _malformed(message: str) -> CertificateError:
    return CertificateError("cert_malformed", f"certificate malformed: {message}")


def _check_fields(
    kind: int, subject: str, se_id: str, product: str, not_before: int, not_after: int
) -> None:
    """The one place for what a certificate's fields may hold (issue and decode both use it)."""
    if kind == CertKind.DEVICE:
        if not _HEX_ID.fullmatch(subject):
            raise _malformed("device subject must be 32 lowercase hex characters")
        if not _HEX_ID.fullmatch(se_id):
            raise _malformed("device se_id must be 32 lowercase hex characters")
    elif kind in (CertKind.GATEWAY, CertKind.FIRMWARE, CertKind.ACCESS):
        if not _GATEWAY_NAME.fullmatch(subject):
            raise _malformed("gateway or signer subject must be 1..64 characters [a-z0-9.-]")
        if se_id:
            raise _malformed("gateway or signer se_id must be empty")
    else:
        raise _malformed("unknown kind")
    if not _PRODUCT.fullmatch(product):
        raise _malformed("product must be 1..64 characters [a-z0-9-]")
    if not (0 <= not_before < not_after <= _U64_MAX):
        raise _malformed("validity must satisfy 0 <= not_before < not_after < 2^64")


def _lp8(text: str) -> bytes:
    raw = text.encode()
    return bytes([len(raw)]) + raw


@dataclass(frozen=True)
class Certificate:
    """A decoded certificate; :meth:`verify` before trusting any field."""

    serial: bytes
    kind: CertKind
    subject: str
    se_id: str
    product: str
    not_before: int
    not_after: int
    public_key: SM2PublicKey
    issuer_key_id: bytes
    signature: bytes

    def tbs(self) -> bytes:
        """The signed bytes (everything before the signature length)."""
        return b"".join(
            (
                MAGIC,
                self.serial,
                bytes([int(self.kind)]),
                _lp8(self.subject),
                _lp8(self.se_id),
                _lp8(self.product),
                _TIMES.pack(self.not_before, self.not_after),
                self.public_key.raw,
                self.issuer_key_id,
            )
        )

    def encode(self) -> bytes:
        """The binary certificate (tbs ‖ u16 signature length ‖ signature)."""
        return self.tbs() + len(self.signature).to_bytes(2, "big") + self.signature

    @classmethod
    def decode(cls, data: bytes) -> Certificate:
        """Parse a binary certificate; CertificateError("cert_malformed") on anything off."""
        if isinstance(data, bytes | bytearray) and len(data) > MAX_CERTIFICATE_BYTES:
            raise _malformed("longer than 512 bytes")
        cert, end = cls.decode_prefix(data)
        if end != len(data):
            raise _malformed("trailing bytes")
        return cert

    @classmethod
    def decode_prefix(cls, data: bytes) -> tuple[Certificate, int]:
        """Parse a certificate at the start of ``data``; returns it and the offset after it."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise _malformed("not bytes")
        view = bytes(data[:MAX_CERTIFICATE_BYTES])
        reader = _Reader(view)
        if reader.take(4) != MAGIC:
            raise _malformed("wrong magic")
        serial = reader.take(SERIAL_BYTES)
        kind = reader.take(1)[0]
        subject = reader.lp8()
        se_id = reader.lp8()
        product = reader.lp8()
        not_before, not_after = _TIMES.unpack(reader.take(_TIMES.size))
        _check_fields(kind, subject, se_id, product, not_before, not_after)
        try:
            public_key = SM2PublicKey(reader.take(PUBLIC_KEY_BYTES))
        except IntegrityError:
            raise _malformed("public key is not a point on the SM2 curve") from None
        key_id = reader.take(ISSUER_KEY_ID_BYTES)
        sig_len = int.from_bytes(reader.take(2), "big")
        if not 8 <= sig_len <= MAX_SIGNATURE_BYTES:
            raise _malformed("signature length out of range")
        signature = reader.take(sig_len)
        cert = cls(
            serial=serial,
            kind=CertKind(kind),
            subject=subject,
            se_id=se_id,
            product=product,
            not_before=not_before,
            not_after=not_after,
            public_key=public_key,
            issuer_key_id=key_id,
            signature=signature,
        )
        return cert, reader.offset

    def verify(self, issuer: SM2PublicKey, *, now: int) -> None:
        """Check issuer, signature and validity at ``now`` (unix seconds, bounds inclusive)."""
        if self.issuer_key_id != issuer_key_id(issuer):
            raise CertificateError("cert_wrong_issuer", "certificate was issued by another key")
        if not issuer.verify(self.tbs(), self.signature):
            raise CertificateError("cert_bad_signature", "certificate signature does not verify")
        if now < self.not_before:
            raise CertificateError("cert_not_yet_valid", "certificate is not valid yet")
        if now > self.not_after:
            raise CertificateError("cert_expired", "certificate has expired")

    def verify_as(self, kind: CertKind, issuer: SM2PublicKey, *, now: int) -> None:
        """:meth:`verify` and require ``kind`` (``cert_wrong_kind`` otherwise)."""
        self.verify(issuer, now=now)
        if self.kind != kind:
            raise CertificateError("cert_wrong_kind", f"expected a {kind.name.lower()} certificate")


class _Reader:
    """Bounds-checked cursor; running off the end is a malformed certificate."""

    __slots__ = ("data", "offset")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, n: int) -> bytes:
        end = self.offset + n
        if end > len(self.data):
            raise _malformed("truncated")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def lp8(self) -> str:
        raw = self.take(self.take(1)[0])
        try:
            return raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise _malformed("text field is not UTF-8") from None


def issue_certificate(
    signer: Signer,
    *,
    kind: CertKind,
    subject: str,
    se_id: str,
    product: str,
    public_key: SM2PublicKey,
    not_before: int,
    not_after: int,
    serial: bytes | None = None,
) -> Certificate:
    """Sign a certificate with ``signer`` (the device CA); fields are checked as on decode."""
    _check_fields(int(kind), subject, se_id, product, not_before, not_after)
    serial = random_bytes(SERIAL_BYTES) if serial is None else serial
    if len(serial) != SERIAL_BYTES:
        raise _malformed("serial must be 16 bytes")
    unsigned = Certificate(
        serial=serial,
        kind=CertKind(kind),
        subject=subject,
        se_id=se_id,
        product=product,
        not_before=not_before,
        not_after=not_after,
        public_key=public_key,
        issuer_key_id=issuer_key_id(signer.public_key),
        signature=b"",
    )
    signature = signer.sign(unsigned.tbs())
    cert = replace(unsigned, signature=signature)
    if len(cert.encode()) > MAX_CERTIFICATE_BYTES:  # cannot happen with the field limits above
        raise _malformed("certificate longer than 512 bytes")
    return cert
