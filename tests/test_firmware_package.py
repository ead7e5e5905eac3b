"""Firmware packages (anju.protocol.firmware): layout, strict decoding, the signature chain,
and the device's policy — what a device and the platform both check before trusting an image."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anju.kit.crypto import SM2PrivateKey, sm3
from anju.protocol.certificates import Certificate, CertKind
from anju.protocol.errors import CODES, ProtocolError
from anju.protocol.firmware import (
    CHUNK_BYTES,
    MAGIC,
    MAX_IMAGE_BYTES,
    Manifest,
    Offer,
    Package,
    SignedManifest,
    check_offer,
    chunk_count,
    chunk_of,
    reported_version,
    sign_package,
    signed_message,
    version_key,
)
from tests.support.firmware import vector_signer_cert
from tests.vectors import protocol as v

pytestmark = pytest.mark.req("L16", "R11", "R19")

CA = SM2PrivateKey(v.CA_PRIVATE)
OTHER_CA = SM2PrivateKey(v.OTHER_CA_PRIVATE)
SIGNER = SM2PrivateKey(v.FIRMWARE_PRIVATE)
NOW = v.TD_MS // 1000
IMAGE = bytes(range(256)) * 100  # 25,600 bytes: four chunks, the last one short


def package(
    image: bytes = IMAGE,
    version: str = "1.2.0",
    *,
    key: SM2PrivateKey = SIGNER,
    cert: Certificate | None = None,
    min_from: str | None = None,
) -> Package:
    return sign_package(
        image,
        product=v.PRODUCT,
        version=version,
        created_ms=v.TD_MS,
        signer=key,
        certificate=cert or vector_signer_cert(key=key),
        min_from=min_from,
    )


def code(fn: object) -> str:
    try:
        fn()  # type: ignore[operator]
    except ProtocolError as exc:
        return exc.code
    return "ok"


def test_round_trip_and_layout() -> None:
    pkg = package()
    data = pkg.encode()
    assert data[:4] == MAGIC == b"AFW1"
    (manifest_len,) = struct.unpack(">I", data[4:8])
    manifest = data[8 : 8 + manifest_len]
    assert manifest == pkg.signed.manifest_bytes
    o = 8 + manifest_len
    (cert_len,) = struct.unpack(">H", data[o : o + 2])
    assert Certificate.decode(data[o + 2 : o + 2 + cert_len]).kind == CertKind.FIRMWARE
    o += 2 + cert_len
    (sig_len,) = struct.unpack(">H", data[o : o + 2])
    signature = data[o + 2 : o + 2 + sig_len]
    assert data[o + 2 + sig_len :] == IMAGE
    assert SIGNER.public_key.verify(b"anju/firmware/v1" + manifest, signature)
    decoded = Package.decode(data)
    assert decoded == pkg
    got = decoded.verify(CA.public_key, now=NOW)
    assert (got.product, got.version, got.size, got.sm3) == (
        "lock-x1",
        "1.2.0",
        len(IMAGE),
        sm3(IMAGE),
    )
    assert manifest == (
        b'{"created":1767528000000,"format":1,"min_from":null,"product":"lock-x1",'
        + b'"size":25600,"sm3":"'
        + sm3(IMAGE).hex().encode()
        + b'","version":"1.2.0"}'
    )


def test_chunks_cover_the_image_exactly() -> None:
    assert chunk_count(len(IMAGE)) == 4
    assert b"".join(chunk_of(IMAGE, i) for i in range(4)) == IMAGE
    assert len(chunk_of(IMAGE, 3)) == len(IMAGE) - 3 * CHUNK_BYTES
    assert code(lambda: chunk_of(IMAGE, 4)) == "fw_malformed"
    assert code(lambda: chunk_of(IMAGE, -1)) == "fw_malformed"


def test_tampered_image_is_refused() -> None:
    data = bytearray(package().encode())
    data[-1] ^= 0x01
    assert code(lambda: Package.decode(bytes(data)).verify(CA.public_key, now=NOW)) == (
        "fw_digest_mismatch"
    )
    shorter = package().encode()[:-1]
    assert code(lambda: Package.decode(shorter)) == "fw_digest_mismatch"
    longer = package().encode() + b"\x00"
    assert code(lambda: Package.decode(longer)) == "fw_digest_mismatch"


def test_tampered_manifest_is_refused() -> None:
    pkg = package()
    # A canonical manifest with another version: still well formed, no longer signed.
    forged = pkg.signed.manifest_bytes.replace(b'"version":"1.2.0"', b'"version":"9.2.0"')
    signed = SignedManifest.parse(forged, pkg.signed.certificate_bytes, pkg.signed.signature)
    assert code(lambda: signed.verify(CA.public_key, now=NOW)) == "fw_bad_signature"
    # Any flipped byte of the manifest is either malformed or unsigned.
    for i in range(len(pkg.signed.manifest_bytes)):
        raw = bytearray(pkg.signed.manifest_bytes)
        raw[i] ^= 0x01

        def check(raw: bytes = bytes(raw)) -> None:
            SignedManifest.parse(raw, pkg.signed.certificate_bytes, pkg.signed.signature).verify(
                CA.public_key, now=NOW
            )

        assert code(check) in {"fw_malformed", "fw_bad_signature", "fw_too_large"}, i


def test_signature_of_another_manifest_or_no_signature_is_refused() -> None:
    a, b = package(version="1.2.0"), package(version="1.3.0")
    swapped = SignedManifest.parse(
        a.signed.manifest_bytes, a.signed.certificate_bytes, b.signed.signature
    )
    assert code(lambda: swapped.verify(CA.public_key, now=NOW)) == "fw_bad_signature"
    s = a.signed
    unsigned = b"".join(  # the layout with an empty signature
        (
            MAGIC,
            struct.pack(">I", len(s.manifest_bytes)),
            s.manifest_bytes,
            struct.pack(">H", len(s.certificate_bytes)),
            s.certificate_bytes,
            struct.pack(">H", 0),
            a.image,
        )
    )
    assert code(lambda: Package.decode(unsigned)) == "fw_malformed"
    zeros = SignedManifest.parse(a.signed.manifest_bytes, a.signed.certificate_bytes, b"\x00" * 70)
    assert code(lambda: zeros.verify(CA.public_key, now=NOW)) == "fw_bad_signature"


def test_wrong_signers_are_refused() -> None:
    stranger = SM2PrivateKey.generate()
    cases = {
        # A key the CA never certified, with a certificate from another CA.
        "other_ca": package(key=stranger, cert=vector_signer_cert(issuer=OTHER_CA, key=stranger)),
        # The CA certified this key, but as a device: not a firmware signer.
        "device_kind": package(cert=vector_signer_cert(kind=CertKind.GATEWAY)),
        # Certified for another product only.
        "other_product": package(cert=vector_signer_cert(product="meter-m2")),
    }
    for name, pkg in cases.items():
        assert code(lambda pkg=pkg: pkg.verify(CA.public_key, now=NOW)) == "fw_bad_signer", name
    # Signed by another key than the one certified.
    forged = dataclasses.replace(
        package().signed, signature=stranger.sign(signed_message(package().signed.manifest_bytes))
    )
    assert code(lambda: forged.verify(CA.public_key, now=NOW)) == "fw_bad_signature"
    # A certificate for another key cannot be used to sign.
    with pytest.raises(ProtocolError) as exc:
        package(key=stranger, cert=vector_signer_cert())
    assert exc.value.code == "fw_bad_signer"
    # Scoped to this product: accepted.
    package(cert=vector_signer_cert(product=v.PRODUCT)).verify(CA.public_key, now=NOW)


def test_expired_signer_certificate_is_refused() -> None:
    pkg = package(cert=vector_signer_cert(not_after=NOW - 1))
    assert code(lambda: pkg.verify(CA.public_key, now=NOW)) == "fw_signer_expired"
    assert code(lambda: pkg.verify(CA.public_key, now=NOW - 1)) == "ok"


def test_device_policy_product_size_downgrade_min_from() -> None:
    m = package(min_from="1.0").manifest
    assert code(lambda: check_offer(m, product="lock-x1", installed_version="1.1.9")) == "ok"
    assert code(lambda: check_offer(m, product="lock-x1", installed_version="1.2")) == "ok"
    assert code(lambda: check_offer(m, product="lock-x2", installed_version="1.0.0")) == (
        "fw_wrong_product"
    )
    assert code(lambda: check_offer(m, product="lock-x1", installed_version="1.10.0")) == (
        "fw_downgrade"
    )
    assert code(lambda: check_offer(m, product="lock-x1", installed_version="0.9.9")) == (
        "fw_incompatible"
    )
    assert (
        code(
            lambda: check_offer(m, product="lock-x1", installed_version="1.0", max_image_bytes=1000)
        )
        == "fw_too_large"
    )


def test_versions_compare_numerically() -> None:
    assert version_key("1.10") > version_key("1.9.9")
    assert version_key("1.2") == version_key("1.2.0.0")
    for bad in ("", "1.", "01.2", "1.2.3.4.5", "v1", "1.-1", "1234567", 3):
        assert code(lambda bad=bad: version_key(bad)) == "fw_malformed", bad  # type: ignore[arg-type]
    assert reported_version("anju-lock/0.1.0") == "0.1.0"
    assert reported_version("2.0") == "2.0"
    assert reported_version("anju-lock/dev") is None
    assert reported_version(None) is None


def test_size_limits() -> None:
    assert code(lambda: package(image=b"")) == "fw_malformed"
    with pytest.raises(ProtocolError) as exc:
        Manifest("lock-x1", "1.0", MAX_IMAGE_BYTES + 1, bytes(32), 0)
    assert exc.value.code == "fw_too_large"
    assert code(lambda: Package.decode(b"AFW1" + b"\x00" * (MAX_IMAGE_BYTES + 4096))) == (
        "fw_too_large"
    )


def test_offer_arguments_round_trip_and_are_strict() -> None:
    pkg = package()
    offer = Offer("pkg-1", pkg.signed)
    args = offer.to_args()
    assert set(args) == {"pkg", "manifest", "cert", "sig", "chunk"}
    assert Offer.from_args(args) == offer
    bad_cases = [
        {**args, "chunk": 4096},
        {**args, "pkg": "bad id"},
        {**args, "manifest": args["manifest"] + "="},
        {**args, "sig": "!!"},
        {**args, "extra": 1},
        {k: a for k, a in args.items() if k != "cert"},
        "not an object",
    ]
    for bad in bad_cases:
        assert code(lambda bad=bad: Offer.from_args(bad)) == "fw_malformed", bad


@given(st.binary(max_size=600))
def test_decoder_only_raises_firmware_codes(data: bytes) -> None:
    for candidate in (data, MAGIC + data):
        result = code(lambda candidate=candidate: Package.decode(candidate))
        assert result in CODES
        assert result.startswith("fw_")


def test_every_truncation_is_refused() -> None:
    data = package(image=IMAGE[:300]).encode()
    for n in range(len(data)):
        assert code(lambda n=n: Package.decode(data[:n])).startswith("fw_"), n
