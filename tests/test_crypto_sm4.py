"""SM4 (GB/T 32907) block cipher and its GCM (RFC 8998), CTR and CBC modes.

Known answers come from GB/T 32907-2016 Appendix A, the SM4 Internet-Draft
(draft-ribose-cfrg-sm4-10 §A.2) and RFC 8998 Appendix A.1. GCM failures must raise
``IntegrityError`` and never hand back plaintext.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anju.errors import IntegrityError
from anju.kit.crypto import (
    SM4_GCM_NONCE_BYTES,
    SM4_GCM_TAG_BYTES,
    random_bytes,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
    sm4_ctr_crypt,
    sm4_ecb_encrypt_block,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from tests import vectors as v

SEALED = v.GCM_CIPHERTEXT + v.GCM_TAG


@pytest.mark.req("L3", "L13", "R18")
def test_sm4_gbt_32907_example_1() -> None:
    assert sm4_ecb_encrypt_block(v.SM4_KEY, v.SM4_PLAINTEXT) == v.SM4_EXAMPLE_1


@pytest.mark.req("L3", "L13", "R18")
def test_sm4_draft_example_with_another_key() -> None:
    key, plaintext, ciphertext = v.SM4_DRAFT_ECB_2
    assert sm4_ecb_encrypt_block(key, plaintext) == ciphertext


@pytest.mark.req("L3", "L13", "R18")
def test_sm4_gbt_32907_example_2_one_million_encryptions() -> None:
    """E^1,000,000(P) under the same key, in one call to our CBC function.

    With IV = 0, CBC computes C1 = E(P) and, for zero plaintext blocks, Ci = E(C(i-1)) — so block
    number 1,000,000 of the encryption of P ‖ 0^(16·999,999) is the millionth iterate. The trailing
    PKCS#7 block is ignored. One C-level call over 16 MB: a fraction of a second.
    """
    rounds = 1_000_000
    out = sm4_cbc_encrypt(v.SM4_KEY, bytes(16), v.SM4_PLAINTEXT + bytes(16 * (rounds - 1)))
    assert len(out) == 16 * (rounds + 1)
    assert out[:16] == v.SM4_EXAMPLE_1
    assert out[16 * (rounds - 1) : 16 * rounds] == v.SM4_EXAMPLE_2_MILLION


@pytest.mark.req("L3", "R18")
def test_the_cbc_iteration_trick_matches_single_block_encryption() -> None:
    """Validate the trick itself on a short chain against the single-block function."""
    block, chain = v.SM4_PLAINTEXT, []
    for _ in range(5):
        block = sm4_ecb_encrypt_block(v.SM4_KEY, block)
        chain.append(block)
    out = sm4_cbc_encrypt(v.SM4_KEY, bytes(16), v.SM4_PLAINTEXT + bytes(16 * 4))
    assert [out[i : i + 16] for i in range(0, 80, 16)] == chain


@pytest.mark.req("L3", "R18")
@pytest.mark.parametrize(("key", "iv", "plaintext", "ciphertext"), v.SM4_DRAFT_CBC)
def test_sm4_cbc_draft_vectors(key: bytes, iv: bytes, plaintext: bytes, ciphertext: bytes) -> None:
    """The draft's CBC examples are unpadded; ours appends one PKCS#7 block after them."""
    out = sm4_cbc_encrypt(key, iv, plaintext)
    assert out[: len(ciphertext)] == ciphertext
    assert len(out) == len(plaintext) + 16
    assert sm4_cbc_decrypt(key, iv, out) == plaintext


@pytest.mark.req("L3", "R18")
@pytest.mark.parametrize(("key", "iv", "plaintext", "ciphertext"), v.SM4_DRAFT_CTR)
def test_sm4_ctr_draft_vectors(key: bytes, iv: bytes, plaintext: bytes, ciphertext: bytes) -> None:
    assert sm4_ctr_crypt(key, iv, plaintext) == ciphertext
    assert sm4_ctr_crypt(key, iv, ciphertext) == plaintext


@pytest.mark.req("L3", "L13", "R18")
def test_sm4_gcm_rfc_8998_a1_encrypt() -> None:
    assert sm4_gcm_encrypt(v.GCM_KEY, v.GCM_IV, v.GCM_PLAINTEXT, v.GCM_AAD) == SEALED


@pytest.mark.req("L3", "L13", "R18")
def test_sm4_gcm_rfc_8998_a1_decrypt() -> None:
    assert sm4_gcm_decrypt(v.GCM_KEY, v.GCM_IV, SEALED, v.GCM_AAD) == v.GCM_PLAINTEXT


def _must_not_open(key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> None:
    with pytest.raises(IntegrityError):
        sm4_gcm_decrypt(key, nonce, sealed, aad)


@pytest.mark.req("L3", "L13", "R16", "R18")
def test_sm4_gcm_every_single_bit_flip_is_rejected() -> None:
    """All 640 one-bit changes of ciphertext ‖ tag fail to authenticate."""
    for bit in range(len(SEALED) * 8):
        damaged = bytearray(SEALED)
        damaged[bit // 8] ^= 1 << (bit % 8)
        _must_not_open(v.GCM_KEY, v.GCM_IV, bytes(damaged), v.GCM_AAD)


@pytest.mark.req("L3", "L13", "R16", "R18")
def test_sm4_gcm_flipped_tag_bit_is_rejected() -> None:
    damaged = bytearray(SEALED)
    damaged[-1] ^= 0x01
    _must_not_open(v.GCM_KEY, v.GCM_IV, bytes(damaged), v.GCM_AAD)


@pytest.mark.req("L3", "L13", "R16", "R18")
@pytest.mark.parametrize(
    "aad",
    [b"", v.GCM_AAD[:-1], v.GCM_AAD + b"\x00", b"\x00" + v.GCM_AAD[1:], b"table=guest;col=name"],
)
def test_sm4_gcm_wrong_associated_data_is_rejected(aad: bytes) -> None:
    _must_not_open(v.GCM_KEY, v.GCM_IV, SEALED, aad)


@pytest.mark.req("L3", "L13", "R16", "R18")
def test_sm4_gcm_wrong_key_or_nonce_is_rejected() -> None:
    wrong_key = bytes([v.GCM_KEY[0] ^ 1]) + v.GCM_KEY[1:]
    _must_not_open(wrong_key, v.GCM_IV, SEALED, v.GCM_AAD)
    _must_not_open(random_bytes(16), v.GCM_IV, SEALED, v.GCM_AAD)
    wrong_nonce = v.GCM_IV[:-1] + bytes([v.GCM_IV[-1] ^ 1])
    _must_not_open(v.GCM_KEY, wrong_nonce, SEALED, v.GCM_AAD)


@pytest.mark.req("L3", "L13", "R16", "R18")
def test_sm4_gcm_every_truncation_is_rejected() -> None:
    for length in range(len(SEALED)):
        _must_not_open(v.GCM_KEY, v.GCM_IV, SEALED[:length], v.GCM_AAD)
    _must_not_open(v.GCM_KEY, v.GCM_IV, SEALED[1:], v.GCM_AAD)
    _must_not_open(v.GCM_KEY, v.GCM_IV, SEALED + b"\x00", v.GCM_AAD)


@pytest.mark.req("L3", "R18")
@pytest.mark.parametrize("nonce_length", [0, 8, 11, 13, 16])
def test_sm4_gcm_malformed_nonce(nonce_length: int) -> None:
    nonce = bytes(nonce_length)
    with pytest.raises(ValueError, match="nonce"):
        sm4_gcm_encrypt(v.GCM_KEY, nonce, b"x")
    _must_not_open(v.GCM_KEY, nonce, SEALED, v.GCM_AAD)


@pytest.mark.req("L3", "R18")
@pytest.mark.parametrize("key_length", [0, 15, 17, 32])
def test_sm4_rejects_wrong_key_sizes(key_length: int) -> None:
    key = bytes(key_length)
    with pytest.raises(ValueError, match="16 bytes"):
        sm4_gcm_encrypt(key, bytes(12), b"x")
    with pytest.raises(ValueError, match="16 bytes"):
        sm4_ctr_crypt(key, bytes(16), b"x")
    with pytest.raises(ValueError, match="16 bytes"):
        sm4_cbc_encrypt(key, bytes(16), b"x")
    with pytest.raises(ValueError, match="16 bytes"):
        sm4_ecb_encrypt_block(key, bytes(16))


@pytest.mark.req("L3", "R16", "R18")
@settings(max_examples=100, deadline=None)
@given(plaintext=st.binary(max_size=300), aad=st.binary(max_size=64))
def test_sm4_gcm_round_trip(plaintext: bytes, aad: bytes) -> None:
    key, nonce = random_bytes(16), random_bytes(SM4_GCM_NONCE_BYTES)
    sealed = sm4_gcm_encrypt(key, nonce, plaintext, aad)
    assert len(sealed) == len(plaintext) + SM4_GCM_TAG_BYTES
    assert sm4_gcm_decrypt(key, nonce, sealed, aad) == plaintext


@pytest.mark.req("L3", "R16", "R18")
def test_sm4_gcm_empty_plaintext_still_authenticates_the_aad() -> None:
    key, nonce = random_bytes(16), random_bytes(12)
    tag_only = sm4_gcm_encrypt(key, nonce, b"", b"row=7")
    assert len(tag_only) == SM4_GCM_TAG_BYTES
    assert sm4_gcm_decrypt(key, nonce, tag_only, b"row=7") == b""
    _must_not_open(key, nonce, tag_only, b"row=8")


@pytest.mark.req("L3", "R18")
@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_sm4_ctr_round_trip_and_length(data: bytes) -> None:
    key, counter = random_bytes(16), random_bytes(16)
    out = sm4_ctr_crypt(key, counter, data)
    assert len(out) == len(data)
    assert sm4_ctr_crypt(key, counter, out) == data


@pytest.mark.req("L3", "R18")
def test_sm4_ctr_counter_carries_across_all_128_bits() -> None:
    """Block 2 of a stream started at ff…ff uses counter 00…00 (as OpenSSL does)."""
    key = v.SM4_KEY
    stream = sm4_ctr_crypt(key, b"\xff" * 16, bytes(32))
    assert stream[:16] == sm4_ecb_encrypt_block(key, b"\xff" * 16)
    assert stream[16:] == sm4_ecb_encrypt_block(key, bytes(16))


@pytest.mark.req("L3", "R18")
@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_sm4_cbc_round_trip_and_padding(data: bytes) -> None:
    key, iv = random_bytes(16), random_bytes(16)
    out = sm4_cbc_encrypt(key, iv, data)
    assert len(out) == (len(data) // 16 + 1) * 16
    assert sm4_cbc_decrypt(key, iv, out) == data


@pytest.mark.req("L3", "R18")
@pytest.mark.parametrize("length", [0, 1, 15, 17, 31])
def test_sm4_cbc_rejects_bad_lengths(length: int) -> None:
    with pytest.raises(IntegrityError):
        sm4_cbc_decrypt(v.SM4_KEY, bytes(16), bytes(length))


@pytest.mark.req("L3", "R18")
def test_sm4_cbc_rejects_bad_padding() -> None:
    # A last block that decrypts to "...\x00" can never be valid PKCS#7.
    iv = bytes(16)
    bad = sm4_ecb_encrypt_block(v.SM4_KEY, bytes(16))  # decrypts to 16 zero bytes
    with pytest.raises(IntegrityError, match="padding"):
        sm4_cbc_decrypt(v.SM4_KEY, iv, bad)
