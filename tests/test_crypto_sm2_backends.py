"""The two SM2 verification backends — OpenSSL 3 libcrypto (ctypes) and GmSSL — must agree.

``SM2PublicKey.verify_digest`` uses OpenSSL when a usable libcrypto ≥ 3.0 is found, GmSSL
otherwise. These tests run every case through both and require the same answer, on the
GB/T 32918.5 published example, on many random keys and messages (valid, invalid, malformed),
on random garbage, and against the independent textbook verifier in ``tests.vectors.ec``. They
also prove that ``EVP_PKEY_verify`` takes the final digest e = SM3(Z‖M) (no Z added), that a
failed OpenSSL verify writes nothing to stdout/stderr and leaves OpenSSL's error queue empty,
that threads can share a key, and that the EVP_PKEY is freed with its Python object.
"""

from __future__ import annotations

import copy
import ctypes
import gc
import os
import pickle
import random
import threading
from collections.abc import Iterator

import gmssl_pyx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anju.kit.crypto import SM2PrivateKey, SM2PublicKey, der, openssl_sm2, sm2_z, sm3
from anju.kit.crypto.sm2 import (
    N,
    force_gmssl_verify,
    rs_to_signature,
    signature_to_rs,
    verify_backend,
)
from tests import vectors as v
from tests.vectors import ec
from tests.vectors.malformed import malformed_signatures

pytestmark = [
    pytest.mark.req("L3", "L16", "R18"),
    pytest.mark.skipif(
        not openssl_sm2.available(),
        reason=f"no usable OpenSSL 3 libcrypto: {openssl_sm2.unavailable_reason()}",
    ),
]

PUBLISHED_SIGNATURE = rs_to_signature(v.SM2_R, v.SM2_S)
MALFORMED = malformed_signatures()


@pytest.fixture(autouse=True)
def _openssl_backend() -> Iterator[None]:
    """Every test starts (and leaves the module) on the automatic choice."""
    force_gmssl_verify(False)
    yield
    force_gmssl_verify(False)


def both(public: SM2PublicKey, e: bytes, signature: bytes) -> tuple[bool, bool]:
    """(OpenSSL answer, GmSSL answer) through the facade, forcing each backend in turn."""
    force_gmssl_verify(False)
    assert verify_backend() == "openssl"
    by_openssl = public.verify_digest(e, signature)
    force_gmssl_verify(True)
    assert verify_backend() == "gmssl"
    by_gmssl = public.verify_digest(e, signature)
    force_gmssl_verify(False)
    return by_openssl, by_gmssl


def gmssl_raw(public: SM2PublicKey, e: bytes, signature: bytes) -> bool:
    """GmSSL with no Python pre-checks at all."""
    try:
        return bool(gmssl_pyx.sm2_verify_sm3_digest(public.raw, e, signature))
    except (gmssl_pyx.GmsslInnerError, ValueError, TypeError):
        return False


def peek_openssl_error() -> int:
    """``ERR_peek_error()`` of this thread, through a handle of our own on the same library."""
    lib = ctypes.CDLL("libcrypto.so.3")
    lib.ERR_peek_error.argtypes = []
    lib.ERR_peek_error.restype = ctypes.c_ulong
    return int(lib.ERR_peek_error())


# --- backend choice -----------------------------------------------------------------------


def test_openssl_is_chosen_automatically_and_can_be_overridden() -> None:
    assert verify_backend() == "openssl"
    assert openssl_sm2.library_version().startswith("OpenSSL 3.")
    assert openssl_sm2.unavailable_reason() == ""
    force_gmssl_verify()
    assert verify_backend() == "gmssl"
    assert SM2PublicKey(v.SM2_PUBLIC).verify_digest(v.SM2_E, PUBLISHED_SIGNATURE)
    force_gmssl_verify(False)
    assert verify_backend() == "openssl"


def test_key_openssl_refused_falls_back_to_gmssl() -> None:
    """The per-key fallback path: no EVP_PKEY cached for this key, so GmSSL answers."""
    public = SM2PublicKey(v.SM2_PUBLIC)
    public._verifier_cache["openssl"] = None
    assert public.verify_digest(v.SM2_E, PUBLISHED_SIGNATURE)
    assert not public.verify_digest(sm3(v.SM2_SIGN_MESSAGE), PUBLISHED_SIGNATURE)


def test_verify_key_refuses_anything_but_one_sm2_spki() -> None:
    spki = SM2PublicKey(v.SM2_PUBLIC).to_der()
    p256 = der.sequence(
        der.sequence(der.oid("1.2.840.10045.2.1"), der.oid("1.2.840.10045.3.1.7")),
        der.tlv(der.BIT_STRING, b"\x00\x04" + ec.to_bytes(ec.G)),
    )
    for bad in (b"", b"\x30\x00", spki[:-1], spki + b"\x00", p256):
        with pytest.raises(ValueError, match="SubjectPublicKeyInfo"):
            openssl_sm2.VerifyKey(bad)


# --- what EVP_PKEY_verify signs: the final digest e ---------------------------------------


def test_openssl_takes_e_with_z_already_applied() -> None:
    """The published signature verifies over e = SM3(Z‖M) and over nothing else."""
    key = openssl_sm2.VerifyKey(SM2PublicKey(v.SM2_PUBLIC).to_der())
    assert sm3(v.SM2_Z + v.SM2_SIGN_MESSAGE) == v.SM2_E
    assert key.verify(v.SM2_E, PUBLISHED_SIGNATURE) is True
    assert key.verify(sm3(v.SM2_SIGN_MESSAGE), PUBLISHED_SIGNATURE) is False  # no Z
    other_z = sm2_z(v.SM2_PUBLIC, b"anju-audit")
    assert key.verify(sm3(other_z + v.SM2_SIGN_MESSAGE), PUBLISHED_SIGNATURE) is False
    assert key.verify(sm3(v.SM2_Z + v.SM2_Z + v.SM2_SIGN_MESSAGE), PUBLISHED_SIGNATURE) is False
    assert key.verify(v.SM2_E[:31], PUBLISHED_SIGNATURE) is False
    assert key.verify(v.SM2_E + b"\x00", PUBLISHED_SIGNATURE) is False


def test_published_example_agrees() -> None:
    public = SM2PublicKey(v.SM2_PUBLIC)
    assert both(public, v.SM2_E, PUBLISHED_SIGNATURE) == (True, True)
    for r, s in ((v.SM2_R + 1, v.SM2_S), (v.SM2_R, v.SM2_S - 1), (v.SM2_S, v.SM2_R)):
        assert both(public, v.SM2_E, rs_to_signature(r, s)) == (False, False)


@pytest.mark.parametrize(("case", "signature"), MALFORMED)
def test_malformed_signatures_agree(case: str, signature: bytes) -> None:
    public = SM2PublicKey(v.SM2_PUBLIC)
    assert both(public, v.SM2_E, signature) == (False, False), case


@pytest.mark.parametrize(("case", "signature"), MALFORMED)
def test_openssl_rejects_malformed_signatures_without_our_der_check(
    case: str, signature: bytes
) -> None:
    """Straight to EVP_PKEY_verify, past the facade's strict DER parser: still False."""
    key = openssl_sm2.VerifyKey(SM2PublicKey(v.SM2_PUBLIC).to_der())
    assert key.verify(v.SM2_E, signature) is False, case
    assert peek_openssl_error() == 0, case


# --- many random keys and messages --------------------------------------------------------


def _cases_for(key: SM2PrivateKey, rng: random.Random) -> Iterator[tuple[str, bytes, bytes]]:
    """(label, e, signature) triples for one key: valid ones and near misses."""
    public = key.public_key
    message = rng.randbytes(rng.randrange(0, 300))
    signer_id = rng.choice([b"1234567812345678", b"anju-audit", rng.randbytes(20)])
    e = public.digest(message, signer_id)
    signature = key.sign(message, signer_id)
    r, s = signature_to_rs(signature)
    yield "valid", e, signature
    yield "valid, e as signed digest", e, key.sign_digest(e)
    yield "other message", public.digest(message + b"x", signer_id), signature
    yield "other signer id", public.digest(message, signer_id + b"x"), signature
    yield "e without Z", sm3(message), signature
    flipped = bytearray(e)
    flipped[rng.randrange(32)] ^= 1 << rng.randrange(8)
    yield "one bit of e", bytes(flipped), signature
    yield "r + 1", e, rs_to_signature(r + 1 if r + 1 < N else 1, s)
    yield "s + 1", e, rs_to_signature(r, s + 1 if s + 1 < N else 1)
    yield "r and s swapped", e, rs_to_signature(s, r)
    yield "r + s = n (t = 0)", e, rs_to_signature(r, N - r)
    yield "r = s = 1", e, rs_to_signature(1, 1)
    yield "r = s = n - 1", e, rs_to_signature(N - 1, N - 1)
    yield "random r, s", e, rs_to_signature(rng.randrange(1, N), rng.randrange(1, N))
    damaged = bytearray(signature)
    damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
    yield "one bit of the DER", e, bytes(damaged)
    yield "truncated DER", e, signature[: rng.randrange(len(signature))]


def test_random_keys_and_messages_agree() -> None:
    rng = random.Random(20240613)
    keys = [SM2PrivateKey.generate() for _ in range(40)]
    valid = 0
    for index, key in enumerate(keys):
        for label, e, signature in _cases_for(key, rng):
            by_openssl, by_gmssl = both(key.public_key, e, signature)
            assert by_openssl == by_gmssl, (index, label)
            assert by_openssl == label.startswith("valid"), (index, label)
            valid += by_openssl
        other = keys[index - 1].public_key  # a signature under the wrong key
        _, e, signature = next(_cases_for(key, rng))
        assert both(other, e, signature) == (False, False)
    assert valid == 2 * len(keys)


def test_random_signatures_agree_with_the_textbook_verifier() -> None:
    """Valid signatures from GmSSL and from the textbook signer, checked three ways."""
    rng = random.Random(7)
    for _ in range(6):
        key = SM2PrivateKey.generate()
        d = int.from_bytes(key.private_bytes(), "big")
        e = key.public_key.digest(rng.randbytes(64))
        r, s = ec.sign_with_nonce(e, d, rng.randrange(1, N))
        for sig_r, sig_s in ((r, s), signature_to_rs(key.sign_digest(e))):
            expected = ec.verify(e, sig_r, sig_s, key.public_key.raw)
            assert expected
            assert both(key.public_key, e, rs_to_signature(sig_r, sig_s)) == (True, True)


def test_digest_at_or_above_n_is_reduced_the_same_way() -> None:
    """e ≥ n: both compute R = (e + x1) mod n as GB/T 32918 does, so e and e - n agree."""
    key = SM2PrivateKey.generate()
    d = int.from_bytes(key.private_bytes(), "big")
    big = (N + 12345).to_bytes(32, "big")  # a 256-bit e above n
    small = (12345).to_bytes(32, "big")
    signature = rs_to_signature(*ec.sign_with_nonce(big, d, 987654321))
    for e in (big, small):
        expected = ec.verify(e, *signature_to_rs(signature), key.public_key.raw)
        assert both(key.public_key, e, signature) == (expected, expected)
        assert expected


# --- garbage in: False, never an exception, never stderr ----------------------------------


@settings(max_examples=300, deadline=None)
@given(signature=st.binary(max_size=120), e=st.binary(min_size=0, max_size=40))
def test_garbage_agrees_and_never_raises(signature: bytes, e: bytes) -> None:
    public = SM2PublicKey(v.SM2_PUBLIC)
    assert both(public, e, signature) == (False, False)
    key = public._openssl_verifier()
    assert key is not None
    assert key.verify(e, signature) is False
    assert key.verify(v.SM2_E, signature) is False


@settings(max_examples=200, deadline=None)
@given(r=st.integers(min_value=0, max_value=2**264), s=st.integers(min_value=0, max_value=2**264))
def test_arbitrary_integers_agree(r: int, s: int) -> None:
    public = SM2PublicKey(v.SM2_PUBLIC)
    signature = rs_to_signature(r, s)
    by_openssl, by_gmssl = both(public, v.SM2_E, signature)
    assert by_openssl == by_gmssl == ((r, s) == (v.SM2_R, v.SM2_S))
    key = public._openssl_verifier()
    assert key is not None
    assert key.verify(v.SM2_E, signature) is by_openssl  # without the facade's range check


def test_non_bytes_arguments_are_false() -> None:
    key = openssl_sm2.VerifyKey(SM2PublicKey(v.SM2_PUBLIC).to_der())
    assert key.verify(bytearray(v.SM2_E), memoryview(PUBLISHED_SIGNATURE)) is True
    for e, sig in ((None, PUBLISHED_SIGNATURE), (v.SM2_E, None), (32, PUBLISHED_SIGNATURE)):
        assert key.verify(e, sig) is False  # type: ignore[arg-type]
    public = SM2PublicKey(v.SM2_PUBLIC)
    assert public.verify_digest(v.SM2_E, None) is False  # type: ignore[arg-type]


def test_failed_openssl_verify_is_silent(capfd: pytest.CaptureFixture[str]) -> None:
    public = SM2PublicKey(v.SM2_PUBLIC)
    key = openssl_sm2.VerifyKey(public.to_der())
    capfd.readouterr()
    for _, signature in MALFORMED:
        assert public.verify_digest(v.SM2_E, signature) is False
        assert key.verify(v.SM2_E, signature) is False
    assert public.verify_digest(sm3(b"forged"), PUBLISHED_SIGNATURE) is False
    assert key.verify(sm3(b"forged"), PUBLISHED_SIGNATURE) is False
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert peek_openssl_error() == 0
    # capfd does see C-level writes to file descriptor 2: the check above is not vacuous.
    os.write(2, b"fd 2 is captured\n")
    assert capfd.readouterr().err == "fd 2 is captured\n"


def test_error_queue_is_cleared_after_each_kind_of_failure() -> None:
    key = openssl_sm2.VerifyKey(SM2PublicKey(v.SM2_PUBLIC).to_der())
    for signature in (b"\x30\x03\x02\x01", b"garbage", rs_to_signature(N + 1, 1)):
        assert key.verify(v.SM2_E, signature) is False
        assert peek_openssl_error() == 0


def test_gmssl_raw_and_openssl_raw_agree_on_malformed() -> None:
    """Both libraries on their own (no facade pre-checks) reject every malformed case."""
    public = SM2PublicKey(v.SM2_PUBLIC)
    key = openssl_sm2.VerifyKey(public.to_der())
    for case, signature in MALFORMED:
        assert key.verify(v.SM2_E, signature) is False, case
        assert gmssl_raw(public, v.SM2_E, signature) is False, case


# --- threads and lifetime -----------------------------------------------------------------


def test_threads_share_one_key() -> None:
    key = SM2PrivateKey.generate()
    public = key.public_key
    items = [(public.digest(bytes([i])), key.sign(bytes([i]))) for i in range(16)]
    errors: list[str] = []

    def work(offset: int) -> None:
        for round_ in range(30):
            e, signature = items[(offset + round_) % len(items)]
            other_e, _ = items[(offset + round_ + 1) % len(items)]
            if not public.verify_digest(e, signature):
                errors.append(f"valid rejected in thread {offset}")
            if public.verify_digest(other_e, signature):
                errors.append(f"invalid accepted in thread {offset}")
            if public.verify_digest(e, b"junk"):
                errors.append(f"junk accepted in thread {offset}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert public._verifier_cache["openssl"] is not None


def test_evp_pkey_is_freed_with_its_key() -> None:
    public = SM2PublicKey(SM2PrivateKey.generate().public_key.raw)
    verifier = public._openssl_verifier()
    assert verifier is not None
    finalizer = verifier._finalizer
    assert finalizer.alive
    assert public._openssl_verifier() is verifier  # built once, cached
    del public, verifier
    gc.collect()
    assert not finalizer.alive


def test_copies_get_their_own_evp_pkey() -> None:
    public = SM2PublicKey(v.SM2_PUBLIC)
    assert public.verify_digest(v.SM2_E, PUBLISHED_SIGNATURE)
    original = public._verifier_cache["openssl"]
    assert original is not None
    for clone in (copy.deepcopy(public), pickle.loads(pickle.dumps(public))):  # noqa: S301
        cloned = clone._verifier_cache["openssl"]
        assert cloned is not None
        assert cloned._pkey != original._pkey
        assert clone.verify_digest(v.SM2_E, PUBLISHED_SIGNATURE)
        del clone, cloned
        gc.collect()
    assert public.verify_digest(v.SM2_E, PUBLISHED_SIGNATURE)  # the original still works
