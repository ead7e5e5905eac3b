"""SM3 (GB/T 32905), HMAC-SM3, the GB/T 32918.4 KDF and HKDF-SM3 against published vectors.

Each function of the facade is checked against a published known answer where one exists, and
against an independent computation (Python's ``hashlib``/``hmac`` over OpenSSL's SM3, GmSSL's
own KDF, the textbook curve model in ``tests.vectors.ec``) for many inputs.
"""

from __future__ import annotations

import hashlib
import hmac

import gmssl_pyx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anju.kit.crypto import HmacSm3, hkdf_sm3, hmac_sm3, hmac_sm3_verify, kdf_sm3, sm3
from tests import vectors as v
from tests.vectors import ec


def _hashlib_sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


@pytest.mark.req("L3", "L13", "R18")
def test_sm3_gbt_32905_example_1_abc() -> None:
    assert sm3(b"abc") == v.SM3_ABC


@pytest.mark.req("L3", "L13", "R18")
def test_sm3_gbt_32905_example_2_64_bytes() -> None:
    assert sm3(b"abcd" * 16) == v.SM3_ABCD_X16


@pytest.mark.req("L3", "R18")
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_sm3_agrees_with_an_independent_implementation(data: bytes) -> None:
    assert sm3(data) == _hashlib_sm3(data) == bytes(gmssl_pyx.sm3_hash(data))


@pytest.mark.req("L3", "R18")
@pytest.mark.parametrize("length", [0, 55, 56, 63, 64, 65, 119, 120, 128, 1000])
def test_sm3_padding_boundaries(length: int) -> None:
    """Lengths around the 448-bit padding boundary and whole blocks."""
    data = bytes(i % 251 for i in range(length))
    assert sm3(data) == _hashlib_sm3(data)
    assert len(sm3(data)) == 32


@pytest.mark.req("L3", "L13", "R18")
@pytest.mark.parametrize(("key", "message", "tag"), v.HMAC_SM3_GMT_0042)
def test_hmac_sm3_gmt_0042_appendix_d3(key: bytes, message: bytes, tag: bytes) -> None:
    assert hmac_sm3(key, message) == tag
    assert HmacSm3(key).digest(message) == tag
    assert hmac_sm3_verify(key, message, tag)


@pytest.mark.req("L3", "R18")
def test_hmac_sm3_key_longer_than_a_block_is_hashed_first() -> None:
    key = bytes(range(100))  # > 64-byte SM3 block: RFC 2104 hashes the key first
    assert hmac_sm3(key, b"m") == hmac_sm3(sm3(key), b"m")
    assert hmac_sm3(key, b"m") == hmac.digest(key, b"m", "sm3")


@pytest.mark.req("L3", "R18")
@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=100), st.binary(max_size=200))
def test_hmac_sm3_agrees_with_stdlib_hmac(key: bytes, message: bytes) -> None:
    assert hmac_sm3(key, message) == hmac.digest(key, message, "sm3")


@pytest.mark.req("L3", "R18")
def test_reusable_hmac_does_not_carry_state_between_messages() -> None:
    mac = HmacSm3(b"blind-index-key")
    first = mac.digest(b"110105199001010002")
    mac.digest(b"something else entirely")
    assert mac.digest(b"110105199001010002") == first
    assert first == hmac_sm3(b"blind-index-key", b"110105199001010002")


@pytest.mark.req("L3", "R18")
def test_hmac_sm3_verify_rejects_wrong_tags() -> None:
    key, message = b"k" * 16, b"unlock record 42"
    tag = hmac_sm3(key, message)
    assert hmac_sm3_verify(key, message, tag)
    assert not hmac_sm3_verify(key, message + b"!", tag)
    assert not hmac_sm3_verify(b"K" * 16, message, tag)
    assert not hmac_sm3_verify(key, message, tag[:-1])
    assert not hmac_sm3_verify(key, message, b"")
    for i in range(len(tag)):
        flipped = bytearray(tag)
        flipped[i] ^= 0x80
        assert not hmac_sm3_verify(key, message, bytes(flipped))


def _reference_kdf(z: bytes, length: int) -> bytes:
    """GB/T 32918.4 §5.4.3 written out again over hashlib's SM3."""
    blocks = [_hashlib_sm3(z + ct.to_bytes(4, "big")) for ct in range(1, length // 32 + 2)]
    return b"".join(blocks)[:length]


@pytest.mark.req("L3", "L13", "R18")
def test_kdf_published_value_from_the_gbt_32918_4_encryption_example() -> None:
    """t = KDF(x2‖y2, 152 bits) of the (test-curve) example; the KDF itself is curve-free."""
    assert kdf_sm3(v.KDF_X2 + v.KDF_Y2, 19) == v.KDF_T


@pytest.mark.req("L3", "L13", "R18")
def test_kdf_reproduces_the_recommended_curve_encryption_example() -> None:
    """Re-derive (x2, y2) = [d]C1 independently; C3 must check, and KDF must give C2 ⊕ M."""
    d = int.from_bytes(v.SM2_D, "big")
    x2y2 = ec.to_bytes(ec.mul(d, ec.from_bytes(v.SM2_ENC_C1)))
    x2, y2 = x2y2[:32], x2y2[32:]
    assert sm3(x2 + v.SM2_ENC_MESSAGE + y2) == v.SM2_ENC_C3
    keystream = bytes(c ^ m for c, m in zip(v.SM2_ENC_C2, v.SM2_ENC_MESSAGE, strict=True))
    assert kdf_sm3(x2y2, len(v.SM2_ENC_MESSAGE)) == keystream


@pytest.mark.req("L3", "R18")
@pytest.mark.parametrize("length", [1, 16, 31, 32, 33, 64, 65, 100, 1000])
def test_kdf_agrees_with_independent_implementations(length: int) -> None:
    z = bytes(range(64))
    ours = kdf_sm3(z, length)
    assert len(ours) == length
    assert ours == _reference_kdf(z, length)
    assert ours == bytes(gmssl_pyx.sm3_kdf(z, length))


@pytest.mark.req("L3", "R18")
def test_kdf_output_is_a_prefix_of_longer_output() -> None:
    z = b"shared secret"
    assert kdf_sm3(z, 100)[:40] == kdf_sm3(z, 40)


@pytest.mark.req("L3", "R18")
@pytest.mark.parametrize("length", [0, -1])
def test_kdf_rejects_non_positive_lengths(length: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        kdf_sm3(b"z", length)


def _reference_hkdf(ikm: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    """RFC 5869 written out again with the stdlib ``hmac`` over SM3."""
    prk = hmac.digest(salt if salt is not None else bytes(32), ikm, "sm3")
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sm3")
        okm += block
        counter += 1
    return okm[:length]


@pytest.mark.req("L3", "R18")
@pytest.mark.parametrize("length", [16, 32, 33, 42, 255])
def test_hkdf_sm3_agrees_with_rfc_5869_construction(length: int) -> None:
    ikm, salt, info = b"\x0b" * 22, bytes(range(13)), bytes(range(0xF0, 0xFA))
    assert hkdf_sm3(ikm, length=length, info=info, salt=salt) == _reference_hkdf(
        ikm, salt, info, length
    )


@pytest.mark.req("L3", "R18")
def test_hkdf_sm3_without_salt_uses_hash_length_zeros() -> None:
    ikm = b"device root key"
    assert hkdf_sm3(ikm, length=16, info=b"x") == _reference_hkdf(ikm, None, b"x", 16)
    assert hkdf_sm3(ikm, length=16, info=b"x") == hkdf_sm3(
        ikm, length=16, info=b"x", salt=bytes(32)
    )


@pytest.mark.req("L3", "R18")
def test_hkdf_sm3_separates_by_info_and_salt() -> None:
    ikm = b"master"
    keys = {
        hkdf_sm3(ikm, length=16, info=b"field:name"),
        hkdf_sm3(ikm, length=16, info=b"field:phone"),
        hkdf_sm3(ikm, length=16, info=b"field:name", salt=b"s1"),
        hkdf_sm3(ikm, length=16, info=b"field:name", salt=b"s2"),
    }
    assert len(keys) == 4
