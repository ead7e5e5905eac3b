"""Signed firmware packages, shared by the platform (upload, delivery) and devices (verification).

Package file (docs/protocol.md, "Firmware packages"), integers big-endian::

    b"AFW1" ‖ u32 manifest length ‖ manifest ‖ u16 certificate length ‖ signer certificate
            ‖ u16 signature length ‖ signature ‖ image

The manifest is canonical JSON (:func:`anju.protocol.messages.canonical_json`) naming the product,
the version, the image size and its SM3 digest. ``signature`` = SM2 (default signer id) by the
signer key over ``b"anju/firmware/v1" ‖ manifest``. The signer certificate is a FIRMWARE
certificate issued by the device CA — which every device already trusts — for the product
``anju-firmware`` (any product) or for the manifest's product only. A device therefore checks a
package in this order, all before downloading the image: certificate → CA, signature → signer key,
then its own policy (product, size, downgrade); and after the download: size and SM3 of the image.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from dataclasses import dataclass
from typing import Any

from anju.kit.crypto import SM2PublicKey, sm3
from anju.kit.keyring import Signer
from anju.protocol.certificates import (
    MAX_CERTIFICATE_BYTES,
    MAX_SIGNATURE_BYTES,
    Certificate,
    CertKind,
)
from anju.protocol.errors import CertificateError, ProtocolError
from anju.protocol.messages import (
    FW_CHUNK_BYTES,
    FW_MAX_CHUNKS,
    FW_STATES,
    MAX_INT,
    canonical_json,
)

MAGIC = b"AFW1"
FORMAT = 1
SIGN_CONTEXT = b"anju/firmware/v1"
#: The product a signer certificate names to sign firmware of every product.
ANY_PRODUCT = "anju-firmware"
#: Image bytes per ``fw_chunk`` message (the last chunk may be shorter).
CHUNK_BYTES = FW_CHUNK_BYTES
MAX_CHUNKS = FW_MAX_CHUNKS
MAX_IMAGE_BYTES = CHUNK_BYTES * MAX_CHUNKS  # 4 MiB
MAX_MANIFEST_BYTES = 1024
MIN_SIGNATURE_BYTES = 8
MAX_PACKAGE_BYTES = (
    len(MAGIC) + 4 + MAX_MANIFEST_BYTES + 2 + MAX_CERTIFICATE_BYTES + 2 + MAX_SIGNATURE_BYTES
) + MAX_IMAGE_BYTES

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_PRODUCT = re.compile(r"[a-z0-9-]{1,64}")
_VERSION = re.compile(r"(0|[1-9][0-9]{0,5})(\.(0|[1-9][0-9]{0,5})){0,3}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MANIFEST_KEYS = frozenset({"format", "product", "version", "size", "sm3", "created", "min_from"})

#: The command that offers a package to a device, and the id pattern of packages on the wire.
OFFER_COMMAND = "ota.update"
PACKAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: What a device reports in ``fw_state``, in the order they happen; ``failed`` may end any step.
REPORT_STATES = FW_STATES
#: Codes a device reports with ``failed`` besides the package checks (``fw_*`` in
#: :data:`anju.protocol.errors.CODES`), and what ``fw_chunk`` answers instead of data.
DEVICE_FAILURE_CODES: dict[str, str] = {
    "fw_not_offered": "the platform does not (or no longer) offer this package to the device",
    "fw_download_failed": "chunks did not arrive after repeated requests",
    "fw_superseded": "another package replaced this one before it was installed",
    "fw_storage_failed": "the device could not store the image or read it back intact",
}


def _error(code: str, message: str) -> ProtocolError:
    return ProtocolError(code, message)


def _malformed(message: str) -> ProtocolError:
    return _error("fw_malformed", f"firmware package malformed: {message}")


def check_version(version: object) -> str:
    """A firmware version: 1–4 dot-separated integers 0…999999 without leading zeros."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise _malformed("version must be 1-4 dot-separated integers, e.g. 1.2.0")
    return version


def version_key(version: str) -> tuple[int, int, int, int]:
    """A version as a comparable tuple; missing parts count as 0 ("1.2" == "1.2.0")."""
    parts = [int(p) for p in check_version(version).split(".")]
    a, b, c, d = parts + [0] * (4 - len(parts))
    return a, b, c, d


def reported_version(firmware: str | None) -> str | None:
    """The version in a device's reported ``state.firmware`` ("<name>/<version>", e.g.
    ``anju-lock/0.1.0``, or a bare version); None when it names no version."""
    if not firmware:
        return None
    candidate = firmware.rsplit("/", 1)[-1]
    return candidate if _VERSION.fullmatch(candidate) else None


def chunk_count(size: int) -> int:
    """How many ``fw_chunk`` messages an image of ``size`` bytes takes."""
    return -(-size // CHUNK_BYTES)


def chunk_of(image: bytes, index: int) -> bytes:
    """Chunk ``index`` (0-based) of ``image``; ProtocolError("fw_malformed") when out of range."""
    if not 0 <= index < chunk_count(len(image)):
        raise _malformed("chunk index out of range")
    return image[index * CHUNK_BYTES : (index + 1) * CHUNK_BYTES]


@dataclass(frozen=True)
class Manifest:
    """What a package claims: product, version, image size and SM3, creation time (unix ms)."""

    product: str
    version: str
    size: int
    sm3: bytes
    created_ms: int
    min_from: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.product, str) or not _PRODUCT.fullmatch(self.product):
            raise _malformed("product must be 1-64 characters [a-z0-9-]")
        check_version(self.version)
        if self.min_from is not None:
            check_version(self.min_from)
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise _malformed("size must be a positive integer")
        if self.size > MAX_IMAGE_BYTES:
            raise _error("fw_too_large", f"firmware image over {MAX_IMAGE_BYTES} bytes")
        if not isinstance(self.sm3, bytes) or len(self.sm3) != 32:
            raise _malformed("sm3 must be 32 bytes")
        created = self.created_ms
        if not isinstance(created, int) or isinstance(created, bool) or not 0 <= created <= MAX_INT:
            raise _malformed("created must be unix milliseconds")

    @property
    def chunks(self) -> int:
        return chunk_count(self.size)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "product": self.product,
            "version": self.version,
            "size": self.size,
            "sm3": self.sm3.hex(),
            "created": self.created_ms,
            "min_from": self.min_from,
        }

    def encode(self) -> bytes:
        """The canonical JSON bytes (what the signature covers)."""
        return canonical_json(self.to_json())

    @classmethod
    def decode(cls, raw: bytes) -> Manifest:
        """Parse manifest bytes; they must be canonical JSON with exactly the known fields."""
        if not isinstance(raw, bytes) or not 0 < len(raw) <= MAX_MANIFEST_BYTES:
            raise _malformed(f"manifest must be 1-{MAX_MANIFEST_BYTES} bytes")
        try:
            value = json.loads(raw.decode("utf-8", errors="strict"))
            canonical = isinstance(value, dict) and canonical_json(value) == raw
        except (ValueError, RecursionError, ProtocolError):
            raise _malformed("manifest is not canonical JSON") from None
        if not canonical:
            raise _malformed("manifest is not a canonical JSON object")
        if set(value) != _MANIFEST_KEYS:
            raise _malformed("manifest fields differ from the format")
        if value["format"] != FORMAT:
            raise _malformed("unknown manifest format")
        digest = value["sm3"]
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise _malformed("sm3 must be 64 lowercase hex characters")
        return cls(
            product=value["product"],
            version=value["version"],
            size=value["size"],
            sm3=bytes.fromhex(digest),
            created_ms=value["created"],
            min_from=value["min_from"],
        )


def signed_message(manifest_bytes: bytes) -> bytes:
    """The bytes the signer key signs: ``b"anju/firmware/v1" ‖ manifest``."""
    return SIGN_CONTEXT + manifest_bytes


def check_signer(certificate: Certificate, ca: SM2PublicKey, product: str, *, now: int) -> None:
    """The signer certificate is a FIRMWARE certificate of ``ca``, valid ``now``, for
    ``product`` (or for every product). ``fw_signer_expired`` / ``fw_bad_signer`` otherwise."""
    try:
        certificate.verify_as(CertKind.FIRMWARE, ca, now=now)
    except CertificateError as exc:
        if exc.code == "cert_expired":
            raise _error("fw_signer_expired", "firmware signer certificate expired") from None
        raise _error("fw_bad_signer", f"firmware signer certificate refused ({exc.code})") from None
    if certificate.product not in (ANY_PRODUCT, product):
        raise _error("fw_bad_signer", "firmware signer certificate is for another product")


@dataclass(frozen=True)
class SignedManifest:
    """A manifest with its signature and signer certificate, as an ``ota.update`` carries it."""

    manifest_bytes: bytes
    certificate_bytes: bytes
    signature: bytes
    manifest: Manifest
    certificate: Certificate

    @classmethod
    def parse(
        cls, manifest_bytes: bytes, certificate_bytes: bytes, signature: bytes
    ) -> SignedManifest:
        """Decode the three parts (nothing is verified yet: call :meth:`verify`)."""
        if not MIN_SIGNATURE_BYTES <= len(signature) <= MAX_SIGNATURE_BYTES:
            raise _malformed("signature length out of range")
        try:
            certificate = Certificate.decode(certificate_bytes)
        except CertificateError:
            raise _malformed("signer certificate does not decode") from None
        return cls(
            manifest_bytes=manifest_bytes,
            certificate_bytes=certificate_bytes,
            signature=signature,
            manifest=Manifest.decode(manifest_bytes),
            certificate=certificate,
        )

    @property
    def id(self) -> bytes:
        """SM3 of the manifest bytes: names this exact signed release (e.g. a device's job)."""
        return sm3(self.manifest_bytes)

    def verify(self, ca: SM2PublicKey, *, now: int) -> Manifest:
        """Check the chain: signer certificate → ``ca`` (at ``now``, unix seconds), then the
        signature → signer key. Returns the manifest, now trustworthy."""
        check_signer(self.certificate, ca, self.manifest.product, now=now)
        key = self.certificate.public_key
        if not key.verify(signed_message(self.manifest_bytes), self.signature):
            raise _error("fw_bad_signature", "firmware manifest signature does not verify")
        return self.manifest


def check_image(manifest: Manifest, image: bytes) -> None:
    """The image is exactly what the manifest names (size and SM3); ``fw_digest_mismatch``."""
    if len(image) != manifest.size or sm3(image) != manifest.sm3:
        raise _error("fw_digest_mismatch", "firmware image differs from its manifest")


def check_offer(
    manifest: Manifest,
    *,
    product: str,
    installed_version: str,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> None:
    """A device's policy for a verified manifest: its product, a size it can hold, not older
    than what it runs, and ``min_from`` satisfied. The same version passes (already installed)."""
    if manifest.product != product:
        raise _error("fw_wrong_product", "firmware package is for another product")
    if manifest.size > max_image_bytes:
        raise _error("fw_too_large", "firmware image larger than this device can hold")
    installed = version_key(installed_version)
    if version_key(manifest.version) < installed:
        raise _error("fw_downgrade", "firmware package is older than the installed version")
    if manifest.min_from is not None and installed < version_key(manifest.min_from):
        raise _error("fw_incompatible", "installed version is below the package's min_from")


@dataclass(frozen=True)
class Package:
    """A firmware package file: the signed manifest and the image."""

    signed: SignedManifest
    image: bytes

    @property
    def manifest(self) -> Manifest:
        return self.signed.manifest

    def encode(self) -> bytes:
        """The package file bytes (layout in the module docstring)."""
        s = self.signed
        return b"".join(
            (
                MAGIC,
                _U32.pack(len(s.manifest_bytes)),
                s.manifest_bytes,
                _U16.pack(len(s.certificate_bytes)),
                s.certificate_bytes,
                _U16.pack(len(s.signature)),
                s.signature,
                self.image,
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> Package:
        """Parse a package file strictly (bounded: nothing over :data:`MAX_PACKAGE_BYTES`)."""
        if not isinstance(data, bytes | bytearray):
            raise _malformed("not bytes")
        if len(data) > MAX_PACKAGE_BYTES:
            raise _error("fw_too_large", "firmware package over the size limit")
        view = bytes(data)
        offset = 0

        def take(n: int) -> bytes:
            nonlocal offset
            if offset + n > len(view):
                raise _malformed("truncated")
            part = view[offset : offset + n]
            offset += n
            return part

        if take(len(MAGIC)) != MAGIC:
            raise _malformed("wrong magic")
        (manifest_len,) = _U32.unpack(take(4))
        if not 0 < manifest_len <= MAX_MANIFEST_BYTES:
            raise _malformed("manifest length out of range")
        manifest_bytes = take(manifest_len)
        (cert_len,) = _U16.unpack(take(2))
        if not 0 < cert_len <= MAX_CERTIFICATE_BYTES:
            raise _malformed("certificate length out of range")
        certificate_bytes = take(cert_len)
        (sig_len,) = _U16.unpack(take(2))
        signature = take(sig_len)
        signed = SignedManifest.parse(manifest_bytes, certificate_bytes, signature)
        image = view[offset:]
        if len(image) != signed.manifest.size:
            raise _error("fw_digest_mismatch", "image length differs from the manifest's size")
        return cls(signed, image)

    def verify(self, ca: SM2PublicKey, *, now: int) -> Manifest:
        """The whole chain (:meth:`SignedManifest.verify`) and the image digest."""
        manifest = self.signed.verify(ca, now=now)
        check_image(manifest, self.image)
        return manifest


def sign_package(
    image: bytes,
    *,
    product: str,
    version: str,
    created_ms: int,
    signer: Signer,
    certificate: Certificate,
    min_from: str | None = None,
) -> Package:
    """Build and sign a package for ``image`` with ``signer`` (whose certificate is given)."""
    if certificate.public_key != signer.public_key:
        raise _error("fw_bad_signer", "the certificate is not for this signing key")
    manifest = Manifest(
        product=product,
        version=version,
        size=len(image),
        sm3=sm3(image),
        created_ms=created_ms,
        min_from=min_from,
    )
    manifest_bytes = manifest.encode()
    signed = SignedManifest(
        manifest_bytes=manifest_bytes,
        certificate_bytes=certificate.encode(),
        signature=signer.sign(signed_message(manifest_bytes)),
        manifest=manifest,
        certificate=certificate,
    )
    return Package(signed, bytes(image))


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 §4), as every binary field on the wire."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, *, max_bytes: int) -> bytes:
    """Decode canonical base64 of at most ``max_bytes`` bytes; ``fw_malformed`` otherwise."""
    if not isinstance(text, str) or len(text) > 4 * -(-max_bytes // 3):
        raise _malformed("base64 field missing or too long")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed("base64 field does not decode") from None
    if b64encode(data) != text or len(data) > max_bytes:
        raise _malformed("base64 field is not canonical")
    return data


@dataclass(frozen=True)
class Offer:
    """The arguments of an ``ota.update`` command: which package, and its signed manifest."""

    package_id: str
    signed: SignedManifest

    def to_args(self) -> dict[str, Any]:
        s = self.signed
        return {
            "pkg": self.package_id,
            "manifest": b64encode(s.manifest_bytes),
            "cert": b64encode(s.certificate_bytes),
            "sig": b64encode(s.signature),
            "chunk": CHUNK_BYTES,
        }

    @classmethod
    def from_args(cls, args: object) -> Offer:
        """Parse ``ota.update`` arguments strictly (``fw_malformed`` on anything off)."""
        if not isinstance(args, dict) or set(args) != {"pkg", "manifest", "cert", "sig", "chunk"}:
            raise _malformed("ota.update takes pkg, manifest, cert, sig and chunk")
        package_id = args["pkg"]
        if not isinstance(package_id, str) or not PACKAGE_ID.fullmatch(package_id):
            raise _malformed("pkg must be 1-64 characters [A-Za-z0-9_-]")
        if args["chunk"] != CHUNK_BYTES or isinstance(args["chunk"], bool):
            raise _malformed(f"chunk must be {CHUNK_BYTES}")
        signed = SignedManifest.parse(
            b64decode(args["manifest"], max_bytes=MAX_MANIFEST_BYTES),
            b64decode(args["cert"], max_bytes=MAX_CERTIFICATE_BYTES),
            b64decode(args["sig"], max_bytes=MAX_SIGNATURE_BYTES),
        )
        return cls(package_id, signed)
