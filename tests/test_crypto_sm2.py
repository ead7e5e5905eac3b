"""SM2 (GB/T 32918) on the recommended curve sm2p256v1: published examples, round trips, misuse.

The published examples are those of GB/T 32918.5-2017 / GM/T 0003.5-2012 (Annex A signature,
Annex C encryption) — see ``tests.vectors``. Fresh signatures are also checked with the
independent textbook verifier in ``tests.vectors.ec``, so a bug shared by GmSSL's signer and
verifier would still be caught.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anju.errors import CryptoError, IntegrityError
from anju.kit.crypto import DEFAULT_SIGNER_ID, SM2PrivateKey, SM2PublicKey, der, sm2_z, sm3
from anju.kit.crypto.sm2 import N, rs_to_signature, signature_to_rs
from tests import vectors as v
from tests.vectors import ec
from tests.vectors.malformed import malformed_signatures

PUBLISHED_SIGNATURE = rs_to_signature(v.SM2_R, v.SM2_S)

# The Annex C ciphertext C1‖C3‖C2 re-encoded as GM/T 0009 DER: SEQUENCE { INTEGER x,
# INTEGER y, OCTET STRING C3, OCTET STRING C2 }.
PUBLISHED_CIPHERTEXT = der.sequence(
    der.integer(int.from_bytes(v.SM2_ENC_C1[:32], "big")),
    der.integer(int.from_bytes(v.SM2_ENC_C1[32:], "big")),
    der.tlv(der.OCTET_STRING, v.SM2_ENC_C3),
    der.tlv(der.OCTET_STRING, v.SM2_ENC_C2),
)


@pytest.fixture(scope="module")
def published_key() -> SM2PrivateKey:
    return SM2PrivateKey(v.SM2_D)


@pytest.fixture(scope="module")
def fresh_key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


# --- the published examples ---------------------------------------------------------------


@pytest.mark.req("L3", "L13", "R18")
def test_public_key_derived_from_the_published_private_key(published_key: SM2PrivateKey) -> None:
    assert published_key.public_key.raw == v.SM2_PUBLIC
    assert SM2PublicKey(v.SM2_PUBLIC) == published_key.public_key


@pytest.mark.req("L3", "L13", "R18")
def test_z_and_e_match_the_published_values() -> None:
    public = SM2PublicKey(v.SM2_PUBLIC)
    assert sm2_z(v.SM2_PUBLIC, v.SM2_ID) == v.SM2_Z
    assert public.z() == v.SM2_Z  # default signer id is 1234567812345678
    assert DEFAULT_SIGNER_ID == v.SM2_ID
    assert public.digest(v.SM2_SIGN_MESSAGE) == v.SM2_E
    assert public.digest(v.SM2_SIGN_MESSAGE, v.SM2_ID) == sm3(v.SM2_Z + v.SM2_SIGN_MESSAGE)


@pytest.mark.req("L3", "L13", "R18")
def test_published_signature_verifies() -> None:
    public = SM2PublicKey(v.SM2_PUBLIC)
    assert public.verify(v.SM2_SIGN_MESSAGE, PUBLISHED_SIGNATURE)
    assert public.verify(v.SM2_SIGN_MESSAGE, PUBLISHED_SIGNATURE, v.SM2_ID)
    assert public.verify_digest(v.SM2_E, PUBLISHED_SIGNATURE)


@pytest.mark.req("L3", "L13", "R18")
def test_published_signature_is_what_the_standard_equations_give() -> None:
    """Replaying §6 with the published nonce k gives the published (r, s): the vector is sound."""
    assert ec.sign_with_nonce(v.SM2_E, int.from_bytes(v.SM2_D, "big"), v.SM2_K) == (
        v.SM2_R,
        v.SM2_S,
    )


@pytest.mark.req("L3", "L13", "R18")
@pytest.mark.parametrize(
    ("message", "r", "s", "signer_id"),
    [
        (b"message digesT", v.SM2_R, v.SM2_S, v.SM2_ID),
        (b"message digest ", v.SM2_R, v.SM2_S, v.SM2_ID),
        (b"", v.SM2_R, v.SM2_S, v.SM2_ID),
        (v.SM2_SIGN_MESSAGE, v.SM2_R + 1, v.SM2_S, v.SM2_ID),
        (v.SM2_SIGN_MESSAGE, v.SM2_R, v.SM2_S - 1, v.SM2_ID),
        (v.SM2_SIGN_MESSAGE, v.SM2_R ^ (1 << 100), v.SM2_S, v.SM2_ID),
        (v.SM2_SIGN_MESSAGE, v.SM2_S, v.SM2_R, v.SM2_ID),
        (v.SM2_SIGN_MESSAGE, v.SM2_R, v.SM2_S, b"1234567812345679"),
        (v.SM2_SIGN_MESSAGE, v.SM2_R, v.SM2_S, b"anju-audit"),
        (v.SM2_SIGN_MESSAGE, v.SM2_R, v.SM2_S, b""),
    ],
)
def test_published_signature_fails_when_anything_changes(
    message: bytes, r: int, s: int, signer_id: bytes
) -> None:
    public = SM2PublicKey(v.SM2_PUBLIC)
    assert not public.verify(message, rs_to_signature(r, s), signer_id)


@pytest.mark.req("L3", "L13", "R18")
def test_published_signature_fails_under_another_key(fresh_key: SM2PrivateKey) -> None:
    assert not fresh_key.public_key.verify(v.SM2_SIGN_MESSAGE, PUBLISHED_SIGNATURE)


@pytest.mark.req("L3", "L13", "R18")
def test_published_ciphertext_der_matches_the_gmt_0009_encoding() -> None:
    """Our DER re-encoding of C1‖C3‖C2 is byte-identical to the one OpenSSL's tests list."""
    assert PUBLISHED_CIPHERTEXT == v.SM2_ENC_DER


@pytest.mark.req("L3", "L13", "R18")
def test_published_ciphertext_decrypts(published_key: SM2PrivateKey) -> None:
    assert published_key.decrypt(PUBLISHED_CIPHERTEXT) == v.SM2_ENC_MESSAGE


@pytest.mark.req("L3", "L13", "R16", "R18")
def test_every_byte_of_the_published_ciphertext_is_protected(published_key: SM2PrivateKey) -> None:
    """A change anywhere (C1 point, C3 hash, C2 body, DER framing) raises IntegrityError."""
    for i in range(len(PUBLISHED_CIPHERTEXT)):
        for mask in (0x01, 0x80):
            damaged = bytearray(PUBLISHED_CIPHERTEXT)
            damaged[i] ^= mask
            with pytest.raises(IntegrityError):
                published_key.decrypt(bytes(damaged))


@pytest.mark.req("L3", "L13", "R16", "R18")
def test_truncated_or_extended_ciphertext_is_rejected(published_key: SM2PrivateKey) -> None:
    for length in range(len(PUBLISHED_CIPHERTEXT)):
        with pytest.raises(IntegrityError):
            published_key.decrypt(PUBLISHED_CIPHERTEXT[:length])
    with pytest.raises(IntegrityError):
        published_key.decrypt(PUBLISHED_CIPHERTEXT + b"\x00")


@pytest.mark.req("L3", "L13", "R16", "R18")
def test_published_ciphertext_does_not_open_with_another_key(fresh_key: SM2PrivateKey) -> None:
    with pytest.raises(IntegrityError):
        fresh_key.decrypt(PUBLISHED_CIPHERTEXT)


# --- fresh keys: sign / verify ------------------------------------------------------------


@pytest.mark.req("L3", "R18")
@settings(max_examples=20, deadline=None)
@given(message=st.binary(max_size=200), signer_id=st.binary(min_size=1, max_size=40))
def test_sign_verify_round_trip_checked_independently(
    fresh_key: SM2PrivateKey, message: bytes, signer_id: bytes
) -> None:
    signature = fresh_key.sign(message, signer_id)
    public = fresh_key.public_key
    assert public.verify(message, signature, signer_id)
    r, s = signature_to_rs(signature)
    assert ec.verify(public.digest(message, signer_id), r, s, public.raw)


@pytest.mark.req("L3", "R18")
def test_signature_binds_signer_id(fresh_key: SM2PrivateKey) -> None:
    signature = fresh_key.sign(b"checkpoint 17", b"anju-audit")
    assert fresh_key.public_key.verify(b"checkpoint 17", signature, b"anju-audit")
    assert not fresh_key.public_key.verify(b"checkpoint 17", signature)
    assert not fresh_key.public_key.verify(b"checkpoint 17", signature, b"anju-audiT")


@pytest.mark.req("L3", "R18")
def test_signatures_use_a_fresh_nonce_each_time(fresh_key: SM2PrivateKey) -> None:
    signatures = [fresh_key.sign(b"same message") for _ in range(8)]
    assert len({signature_to_rs(sig)[0] for sig in signatures}) == 8  # r = e + x(kG) differs
    assert all(fresh_key.public_key.verify(b"same message", sig) for sig in signatures)


@pytest.mark.req("L3", "R18")
def test_sign_digest_is_sign_of_e(fresh_key: SM2PrivateKey) -> None:
    e = fresh_key.public_key.digest(b"m")
    assert fresh_key.public_key.verify(b"m", fresh_key.sign_digest(e))
    with pytest.raises(CryptoError):
        fresh_key.sign_digest(e[:31])


@pytest.mark.req("L3", "R18")
def test_key_with_derived_public_half_signs_like_the_original(fresh_key: SM2PrivateKey) -> None:
    rebuilt = SM2PrivateKey(fresh_key.private_bytes())
    assert rebuilt.public_key == fresh_key.public_key
    assert fresh_key.public_key.verify(b"m", rebuilt.sign(b"m"))


# --- malformed signatures: False, never an exception --------------------------------------


@pytest.mark.req("L3", "L13", "R18")
@pytest.mark.parametrize(("case", "signature"), malformed_signatures())
def test_malformed_signatures_are_rejected_quietly(case: str, signature: bytes) -> None:
    public = SM2PublicKey(v.SM2_PUBLIC)
    assert public.verify(v.SM2_SIGN_MESSAGE, signature) is False, case
    assert public.verify_digest(v.SM2_E, signature) is False, case


@pytest.mark.req("L3", "R18")
@pytest.mark.parametrize("e", [b"", b"short", bytes(31), bytes(33), bytes(64)])
def test_verify_digest_with_a_wrong_length_digest_is_false(e: bytes) -> None:
    assert SM2PublicKey(v.SM2_PUBLIC).verify_digest(e, PUBLISHED_SIGNATURE) is False


@pytest.mark.req("L3", "R18")
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
def test_random_bytes_never_verify_and_never_raise(signature: bytes) -> None:
    assert SM2PublicKey(v.SM2_PUBLIC).verify(v.SM2_SIGN_MESSAGE, signature) is False


@pytest.mark.req("L3", "R18")
def test_signature_codec_round_trip() -> None:
    assert signature_to_rs(PUBLISHED_SIGNATURE) == (v.SM2_R, v.SM2_S)
    assert PUBLISHED_SIGNATURE[:4] == b"\x30\x46\x02\x21"  # both halves need a 0x00 pad
    small = rs_to_signature(1, 2)
    assert small == b"\x30\x06\x02\x01\x01\x02\x01\x02"
    assert signature_to_rs(small) == (1, 2)


# --- encryption ---------------------------------------------------------------------------


@pytest.mark.req("L3", "R16", "R18")
@pytest.mark.parametrize("length", [1, 16, 32, 33, 255])
def test_encrypt_decrypt_round_trip(fresh_key: SM2PrivateKey, length: int) -> None:
    plaintext = bytes((i * 7) % 256 for i in range(length))
    ciphertext = fresh_key.public_key.encrypt(plaintext)
    assert fresh_key.decrypt(ciphertext) == plaintext
    x, y, c3, c2 = read_ciphertext(ciphertext)
    assert ec.on_curve((x, y))
    assert len(c3) == 32
    assert len(c2) == length


def read_ciphertext(ciphertext: bytes) -> tuple[int, int, bytes, bytes]:
    items = der.read_sequence(ciphertext)
    assert [t for t, _ in items] == [der.INTEGER, der.INTEGER, der.OCTET_STRING, der.OCTET_STRING]
    return (
        der.read_integer(*items[0]),
        der.read_integer(*items[1]),
        items[2][1],
        items[3][1],
    )


@pytest.mark.req("L3", "R16", "R18")
def test_encryption_is_randomised(fresh_key: SM2PrivateKey) -> None:
    one, two = (fresh_key.public_key.encrypt(b"data key") for _ in range(2))
    assert one != two
    assert fresh_key.decrypt(one) == fresh_key.decrypt(two) == b"data key"


@pytest.mark.req("L3", "R16", "R18")
@pytest.mark.parametrize("length", [0, 256, 4096])
def test_encrypt_refuses_sizes_outside_1_to_255(fresh_key: SM2PrivateKey, length: int) -> None:
    with pytest.raises(CryptoError, match="1 to 255"):
        fresh_key.public_key.encrypt(bytes(length))


@pytest.mark.req("L3", "R16", "R18")
def test_decrypt_never_leaks_library_exceptions(fresh_key: SM2PrivateKey) -> None:
    good = fresh_key.public_key.encrypt(b"k" * 32)
    x, y, c3, c2 = read_ciphertext(good)
    cases = [
        b"",
        b"\x30\x00",
        b"\x30\x82\x10\x00" + bytes(4096),
        der.sequence(der.integer(x), der.integer(y), der.tlv(4, c3)),
        der.sequence(der.integer(x), der.integer(y), der.tlv(4, c3), der.tlv(4, b"")),
        der.sequence(der.integer(x), der.integer(y), der.tlv(4, c3), der.tlv(4, bytes(600))),
        der.sequence(der.integer(x), der.integer(y + 1), der.tlv(4, c3), der.tlv(4, c2)),
        der.sequence(der.integer(0), der.integer(0), der.tlv(4, c3), der.tlv(4, c2)),
        der.sequence(der.integer(x), der.integer(y), der.tlv(4, c3[:31]), der.tlv(4, c2)),
        der.sequence(der.integer(x), der.integer(y), der.tlv(4, c2), der.tlv(4, c3)),
    ]
    for case in cases:
        with pytest.raises(IntegrityError):
            fresh_key.decrypt(case)


# --- keys and their encodings -------------------------------------------------------------


@pytest.mark.req("L3", "R18")
@pytest.mark.parametrize(
    "private",
    [bytes(32), N.to_bytes(32, "big"), (N - 1).to_bytes(32, "big"), b"\x01" * 31, b"\x01" * 33],
)
def test_private_key_range_is_1_to_n_minus_2(private: bytes) -> None:
    with pytest.raises(CryptoError):
        SM2PrivateKey(private)


@pytest.mark.req("L3", "R18")
def test_private_key_edges_that_are_valid() -> None:
    one = SM2PrivateKey((1).to_bytes(32, "big"))
    assert one.public_key.raw == ec.to_bytes(ec.G)
    top = SM2PrivateKey((N - 2).to_bytes(32, "big"))
    assert top.public_key.raw == ec.to_bytes(ec.mul(N - 2, ec.G))


@pytest.mark.req("L3", "R18")
def test_public_key_must_be_a_point_on_the_curve() -> None:
    x, y = v.SM2_PUBLIC[:32], v.SM2_PUBLIC[32:]
    bad_y = (int.from_bytes(y, "big") + 1).to_bytes(32, "big")
    for raw in (x + bad_y, bytes(64), b"\x01" * 64, v.SM2_PUBLIC[:63], b"\x04" + x + bad_y):
        with pytest.raises(IntegrityError):
            SM2PublicKey(raw)
    assert SM2PublicKey(b"\x04" + v.SM2_PUBLIC).raw == v.SM2_PUBLIC


@pytest.mark.req("L3", "R18")
def test_public_key_spki_round_trip_and_oid() -> None:
    public = SM2PublicKey(v.SM2_PUBLIC)
    spki = public.to_der()
    assert der.oid("1.2.156.10197.1.301") in spki  # sm2p256v1
    assert der.oid("1.2.840.10045.2.1") in spki  # id-ecPublicKey
    assert SM2PublicKey.from_der(spki) == public
    assert SM2PublicKey.from_pem(public.to_pem()) == public
    assert public.fingerprint() == sm3(spki).hex()


@pytest.mark.req("L3", "R18")
def test_public_key_spki_with_another_curve_is_refused() -> None:
    p256 = der.sequence(der.oid("1.2.840.10045.2.1"), der.oid("1.2.840.10045.3.1.7"))
    spki = der.sequence(p256, der.tlv(der.BIT_STRING, b"\x00\x04" + v.SM2_PUBLIC))
    with pytest.raises(IntegrityError):
        SM2PublicKey.from_der(spki)


@pytest.mark.req("L3", "R18")
def test_pkcs8_round_trip(fresh_key: SM2PrivateKey) -> None:
    pem = fresh_key.to_pkcs8_pem()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    again = SM2PrivateKey.from_pkcs8_pem(pem)
    assert again.private_bytes() == fresh_key.private_bytes()
    assert again.public_key == fresh_key.public_key


@pytest.mark.req("L3", "R18")
def test_pkcs8_with_a_mismatched_public_key_is_refused(fresh_key: SM2PrivateKey) -> None:
    """The public key stored next to d must be d·G; otherwise ``public_key`` would lie."""
    published = SM2PrivateKey(v.SM2_D)
    spliced = fresh_key.to_pkcs8_der().replace(fresh_key.public_key.raw, published.public_key.raw)
    assert spliced != fresh_key.to_pkcs8_der()
    pem = "-----BEGIN PRIVATE KEY-----\n" + _b64(spliced) + "\n-----END PRIVATE KEY-----\n"
    with pytest.raises(IntegrityError, match="does not match"):
        SM2PrivateKey.from_pkcs8_pem(pem)


@pytest.mark.req("L3", "R18")
@pytest.mark.parametrize(
    "pem",
    [
        "",
        "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
    ],
)
def test_malformed_pkcs8_is_refused(pem: str) -> None:
    with pytest.raises(IntegrityError):
        SM2PrivateKey.from_pkcs8_pem(pem)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


@pytest.mark.req("L3", "R18")
def test_private_key_repr_does_not_show_the_secret(published_key: SM2PrivateKey) -> None:
    text = repr(published_key) + str(published_key)
    assert v.SM2_D.hex() not in text.lower()
    assert v.SM2_D.hex().upper() not in text
