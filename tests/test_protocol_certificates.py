"""Device and gateway certificates: exact binary layout, strict decoding, verification codes."""

from __future__ import annotations

import dataclasses

import pytest

from anju.kit.crypto import SM2PrivateKey, sm3
from anju.protocol.certificates import (
    MAGIC,
    MAX_CERTIFICATE_BYTES,
    Certificate,
    CertKind,
    issue_certificate,
    issuer_key_id,
)
from anju.protocol.errors import CertificateError, ProtocolError
from tests.vectors import protocol as v

CA = SM2PrivateKey(v.CA_PRIVATE)
OTHER_CA = SM2PrivateKey(v.OTHER_CA_PRIVATE)
DEVICE_KEY = SM2PrivateKey(v.DEVICE_PRIVATE)
GATEWAY_KEY = SM2PrivateKey(v.GATEWAY_PRIVATE)
NOW = v.TD_MS // 1000


def device_cert(signer: SM2PrivateKey = CA, **overrides: object) -> Certificate:
    fields: dict[str, object] = {
        "kind": CertKind.DEVICE,
        "subject": v.DEVICE_ID,
        "se_id": v.SE_ID,
        "product": v.PRODUCT,
        "public_key": DEVICE_KEY.public_key,
        "not_before": v.NOT_BEFORE,
        "not_after": v.NOT_AFTER,
        "serial": v.DEVICE_SERIAL,
    }
    fields.update(overrides)
    return issue_certificate(signer, **fields)  # type: ignore[arg-type]


def gateway_cert() -> Certificate:
    return issue_certificate(
        CA,
        kind=CertKind.GATEWAY,
        subject=v.GATEWAY_NAME,
        se_id="",
        product=v.GATEWAY_PRODUCT,
        public_key=GATEWAY_KEY.public_key,
        not_before=v.NOT_BEFORE,
        not_after=v.NOT_AFTER,
    )


def code_of(data: bytes, *, now: int = NOW) -> str:
    """The rejection code for ``data`` as a certificate from CA, or "ok"."""
    try:
        Certificate.decode(data).verify(CA.public_key, now=now)
    except CertificateError as exc:
        return exc.code
    return "ok"


@pytest.mark.req("L14", "L16", "R15")
def test_round_trip_and_layout() -> None:
    cert = device_cert()
    data = cert.encode()
    assert Certificate.decode(data) == cert
    cert.verify(CA.public_key, now=NOW)
    # The layout of docs/protocol.md, field by field.
    assert data[:4] == MAGIC == b"ADC1"
    assert data[4:20] == v.DEVICE_SERIAL
    assert data[20] == 1
    assert data[21] == 32
    assert data[22:54] == v.DEVICE_ID.encode()
    assert data[54] == 32
    assert data[55:87] == v.SE_ID.encode()
    assert data[87] == len(v.PRODUCT)
    assert data[88 : 88 + 7] == b"lock-x1"
    o = 95
    assert int.from_bytes(data[o : o + 8], "big") == v.NOT_BEFORE
    assert int.from_bytes(data[o + 8 : o + 16], "big") == v.NOT_AFTER
    assert data[o + 16 : o + 80] == DEVICE_KEY.public_key.raw
    assert data[o + 80 : o + 88] == sm3(CA.public_key.to_der())[:8] == issuer_key_id(CA.public_key)
    assert cert.tbs() == data[: o + 88]
    sig_len = int.from_bytes(data[o + 88 : o + 90], "big")
    assert data[o + 90 :] == cert.signature
    assert len(cert.signature) == sig_len
    assert CA.public_key.verify(cert.tbs(), cert.signature)


@pytest.mark.req("L16", "R15")
def test_gateway_certificate_round_trip() -> None:
    cert = gateway_cert()
    assert Certificate.decode(cert.encode()) == cert
    cert.verify_as(CertKind.GATEWAY, CA.public_key, now=NOW)
    with pytest.raises(CertificateError) as exc:
        cert.verify_as(CertKind.DEVICE, CA.public_key, now=NOW)
    assert exc.value.code == "cert_wrong_kind"
    assert len(cert.serial) == 16
    assert gateway_cert().serial != cert.serial  # fresh random serials


@pytest.mark.req("L16", "R15")
def test_every_tbs_byte_is_bound_by_the_signature() -> None:
    data = device_cert().encode()
    tbs_len = len(device_cert().tbs())
    key_id_at = range(tbs_len - 8, tbs_len)
    for i in range(tbs_len):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(data)
            tampered[i] ^= mask
            code = code_of(bytes(tampered))
            allowed = {"cert_bad_signature", "cert_malformed"}
            if i in key_id_at:
                allowed.add("cert_wrong_issuer")
            assert code in allowed, (i, mask, code)


@pytest.mark.req("L16", "R15")
def test_every_signature_byte_matters() -> None:
    data = device_cert().encode()
    tbs_len = len(device_cert().tbs())
    for i in range(tbs_len + 2, len(data)):
        tampered = bytearray(data)
        tampered[i] ^= 0x01
        assert code_of(bytes(tampered)) in {"cert_bad_signature", "cert_malformed"}, i


@pytest.mark.req("L16")
def test_validity_bounds_are_inclusive() -> None:
    data = device_cert().encode()
    assert code_of(data, now=v.NOT_BEFORE) == "ok"
    assert code_of(data, now=v.NOT_AFTER) == "ok"
    assert code_of(data, now=v.NOT_BEFORE - 1) == "cert_not_yet_valid"
    assert code_of(data, now=v.NOT_AFTER + 1) == "cert_expired"


@pytest.mark.req("L16", "R15")
def test_wrong_issuer_key() -> None:
    cert = device_cert(signer=OTHER_CA)
    with pytest.raises(CertificateError) as exc:
        cert.verify(CA.public_key, now=NOW)
    assert exc.value.code == "cert_wrong_issuer"
    # An impostor naming the trusted CA's key id still fails on the signature.
    liar = dataclasses.replace(cert, issuer_key_id=issuer_key_id(CA.public_key))
    liar = dataclasses.replace(liar, signature=OTHER_CA.sign(liar.tbs()))
    with pytest.raises(CertificateError) as exc:
        Certificate.decode(liar.encode()).verify(CA.public_key, now=NOW)
    assert exc.value.code == "cert_bad_signature"


@pytest.mark.req("L16")
def test_truncated_extended_and_oversized_input() -> None:
    original = device_cert()
    data = original.encode()
    for n in range(len(data)):
        assert code_of(data[:n]) == "cert_malformed", n
    assert code_of(data + b"\x00") == "cert_malformed"
    assert code_of(data + bytes(MAX_CERTIFICATE_BYTES)) == "cert_malformed"
    assert code_of(bytes(MAX_CERTIFICATE_BYTES + 1)) == "cert_malformed"
    # decode_prefix reads one certificate and says where it ends.
    cert, end = Certificate.decode_prefix(data + b"rest")
    assert end == len(data)
    assert cert == original


def _rebuild(tbs: bytes, signer: SM2PrivateKey = CA) -> bytes:
    sig = signer.sign(tbs)
    return tbs + len(sig).to_bytes(2, "big") + sig


@pytest.mark.req("L16")
def test_structural_errors_are_malformed_even_when_signed() -> None:
    tbs = device_cert().tbs()
    # a correctly signed but wrong magic
    assert code_of(_rebuild(b"ADC2" + tbs[4:])) == "cert_malformed"
    # unknown kind
    assert code_of(_rebuild(tbs[:20] + b"\x03" + tbs[21:])) == "cert_malformed"
    # subject length running past the end
    assert code_of(_rebuild(tbs[:21] + b"\xff" + tbs[22:])) == "cert_malformed"
    # non-UTF-8 subject of the right length
    bad_subject = tbs[:22] + b"\xff" * 32 + tbs[54:]
    assert code_of(_rebuild(bad_subject)) == "cert_malformed"
    # not_before after not_after
    o = 95
    swapped = tbs[:o] + tbs[o + 8 : o + 16] + tbs[o : o + 8] + tbs[o + 16 :]
    assert code_of(_rebuild(swapped)) == "cert_malformed"
    # public key not on the curve
    bad_point = tbs[: o + 16] + bytes(63) + b"\x01" + tbs[o + 80 :]
    assert code_of(_rebuild(bad_point)) == "cert_malformed"
    # signature length out of range / zero
    assert code_of(tbs + b"\x00\x00") == "cert_malformed"
    assert code_of(tbs + b"\x01\x00" + bytes(256)) == "cert_malformed"
    # garbage and non-bytes
    assert code_of(b"") == "cert_malformed"
    assert code_of(b"ADC1") == "cert_malformed"
    with pytest.raises(CertificateError):
        Certificate.decode("ADC1")  # type: ignore[arg-type]


@pytest.mark.req("L16")
@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": v.DEVICE_ID.upper()},
        {"subject": "lock-1"},
        {"se_id": ""},
        {"se_id": v.SE_ID[:-1]},
        {"product": "Lock-X1"},
        {"product": ""},
        {"product": "x" * 65},
        {"not_before": v.NOT_AFTER},
        {"not_before": -1},
        {"not_after": 1 << 64},
        {"serial": b"short"},
        {"kind": 3},
    ],
)
def test_issue_refuses_invalid_fields(overrides: dict[str, object]) -> None:
    with pytest.raises(CertificateError) as exc:
        device_cert(**overrides)
    assert exc.value.code == "cert_malformed"


@pytest.mark.req("L16")
def test_gateway_certificates_carry_no_se_id() -> None:
    with pytest.raises(CertificateError):
        issue_certificate(
            CA,
            kind=CertKind.GATEWAY,
            subject=v.GATEWAY_NAME,
            se_id=v.SE_ID,
            product=v.GATEWAY_PRODUCT,
            public_key=GATEWAY_KEY.public_key,
            not_before=v.NOT_BEFORE,
            not_after=v.NOT_AFTER,
        )


@pytest.mark.req("L16")
def test_errors_are_protocol_errors_with_stable_codes() -> None:
    with pytest.raises(ProtocolError) as exc:
        Certificate.decode(b"nonsense")
    assert exc.value.code == "cert_malformed"
    assert exc.value.status == 400
    with pytest.raises(ValueError, match="unknown protocol error code"):
        ProtocolError("made_up", "x")
