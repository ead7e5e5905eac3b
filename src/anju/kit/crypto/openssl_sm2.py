"""SM2 signature verification over the system OpenSSL 3 ``libcrypto``, called through ``ctypes``.

Why: GmSSL 3.2's ``sm2_verify_sm3_digest`` (through gmssl-pyx) runs at about half the speed of
OpenSSL's SM2 verify and prints a C-level error trace to stderr on every failed verify. OpenSSL
reports failures only on its per-thread error queue, which this module clears.

What is called (OpenSSL ≥ 3.0 public API only):

* ``d2i_PUBKEY`` once per public key, from our SubjectPublicKeyInfo DER. OpenSSL 3 decodes an
  ``id-ecPublicKey`` on the sm2p256v1 curve as an SM2 key (checked with ``EVP_PKEY_is_a``);
  the ``EVP_PKEY`` is freed with ``EVP_PKEY_free`` when the :class:`VerifyKey` goes away.
* per verification: ``EVP_PKEY_CTX_new(pkey, NULL)``, ``EVP_PKEY_verify_init``,
  ``EVP_PKEY_verify(ctx, sig, siglen, e, 32)``, ``EVP_PKEY_CTX_free``. For an SM2 key the
  ``EVP_PKEY_verify`` input is the final digest e = SM3(Z‖M); OpenSSL adds no Z there (it does
  only in ``EVP_DigestVerify*``). Every call gets its own context, so threads share nothing
  mutable; the ``EVP_PKEY`` itself is only read (OpenSSL reference-counts it per context).

Loading runs a known-answer self-test (the GB/T 32918.5-2017 Annex A signature, which must
verify over e and must fail over SM3(M) without Z, and a one-bit change of e). If the library
is missing, older than 3.0, lacks SM2, or answers wrongly, :func:`available` is False and the
caller uses GmSSL instead. ``ctypes.CDLL`` releases the GIL during each call, so verifications
on several threads run in parallel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
import weakref
from ctypes import POINTER, c_char_p, c_int, c_long, c_size_t, c_ulong, c_void_p
from typing import Final

from anju.kit.crypto.sm3 import sm3

MIN_VERSION: Final = 0x30000000  # OPENSSL_VERSION_NUMBER of 3.0.0 (0xMNN00PP0)
DIGEST_BYTES: Final = 32

# GB/T 32918.5-2017 Annex A (= GM/T 0003.5-2012): public key, e = SM3(Z‖"message digest"),
# signature (r, s) — published values, used only for the load-time self-test.
_KAT_PUBLIC = bytes.fromhex(
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
_KAT_E = bytes.fromhex("F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640")
_KAT_R = bytes.fromhex("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3")
_KAT_S = bytes.fromhex("B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")
_KAT_MESSAGE = b"message digest"
# DER of SEQUENCE { SEQUENCE { id-ecPublicKey, sm2p256v1 }, BIT STRING 00 04 x y }.
_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004")


def _kat_signature() -> bytes:
    # Both halves have their top bit set, so each INTEGER needs a 0x00 pad (33 bytes).
    body = b"\x02\x21\x00" + _KAT_R + b"\x02\x21\x00" + _KAT_S
    return b"\x30" + bytes([len(body)]) + body


def _candidate_names() -> list[str]:
    """Versioned library names only: an unversioned ``libcrypto.dylib`` on macOS aborts on load."""
    names = ["libcrypto.so.3", "libcrypto.3.dylib", "libcrypto-3-x64.dll", "libcrypto-3.dll"]
    found = ctypes.util.find_library("crypto")
    if found and re.search(r"crypto(\.so\.|[.-])3", found) and found not in names:
        names.append(found)
    return names


def _bind(lib: ctypes.CDLL) -> None:
    """Declare argument and result types of every function used (pointers as ``c_void_p``)."""
    signatures: dict[str, tuple[list[type], type | None]] = {
        "OpenSSL_version_num": ([], c_ulong),
        "OpenSSL_version": ([c_int], c_char_p),
        "d2i_PUBKEY": ([c_void_p, POINTER(c_void_p), c_long], c_void_p),
        "EVP_PKEY_is_a": ([c_void_p, c_char_p], c_int),
        "EVP_PKEY_free": ([c_void_p], None),
        "EVP_PKEY_CTX_new": ([c_void_p, c_void_p], c_void_p),
        "EVP_PKEY_CTX_free": ([c_void_p], None),
        "EVP_PKEY_verify_init": ([c_void_p], c_int),
        "EVP_PKEY_verify": ([c_void_p, c_char_p, c_size_t, c_char_p, c_size_t], c_int),
        "ERR_clear_error": ([], None),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)  # AttributeError when the symbol is missing
        function.argtypes = argtypes
        function.restype = restype


class _State:
    """The loaded library (or why it could not be used). Filled once, under a lock."""

    lib: ctypes.CDLL | None = None
    version: str = ""
    reason: str = "not loaded yet"
    loaded: bool = False


_state = _State()
_load_lock = threading.Lock()


def _new_pkey(lib: ctypes.CDLL, spki: bytes) -> int:
    """``d2i_PUBKEY`` over the whole of ``spki``; returns the EVP_PKEY address (caller frees)."""
    buffer = ctypes.create_string_buffer(spki, len(spki))
    cursor = c_void_p(ctypes.addressof(buffer))
    start = cursor.value
    pkey: int | None = lib.d2i_PUBKEY(None, ctypes.byref(cursor), len(spki))
    if not pkey:
        lib.ERR_clear_error()
        raise ValueError("OpenSSL could not decode the SubjectPublicKeyInfo")
    consumed = (cursor.value or 0) - (start or 0)
    if consumed != len(spki) or lib.EVP_PKEY_is_a(pkey, b"SM2") != 1:
        lib.EVP_PKEY_free(pkey)
        lib.ERR_clear_error()
        raise ValueError("not exactly one SM2 SubjectPublicKeyInfo")
    return pkey


def _verify(lib: ctypes.CDLL, pkey: int, e: bytes, signature: bytes) -> bool:
    """One EVP_PKEY_verify with a context of its own. True only when OpenSSL returns 1."""
    ctx: int | None = lib.EVP_PKEY_CTX_new(pkey, None)
    if not ctx:
        lib.ERR_clear_error()
        return False  # out of memory: fail closed
    try:
        result = 0
        if lib.EVP_PKEY_verify_init(ctx) == 1:
            result = lib.EVP_PKEY_verify(ctx, signature, len(signature), e, len(e))
    finally:
        lib.EVP_PKEY_CTX_free(ctx)
    if result != 1:
        lib.ERR_clear_error()  # 0 = bad signature, < 0 = malformed or error: queue stays empty
        return False
    return True


def _self_test(lib: ctypes.CDLL) -> str | None:
    """None when the library verifies SM2 over e exactly as GB/T 32918 says; else the reason."""
    pkey = _new_pkey(lib, _SPKI_PREFIX + _KAT_PUBLIC)
    try:
        signature = _kat_signature()
        if not _verify(lib, pkey, _KAT_E, signature):
            return "the GB/T 32918.5 Annex A signature does not verify over e"
        if _verify(lib, pkey, sm3(_KAT_MESSAGE), signature):
            return "EVP_PKEY_verify accepted SM3(M) without Z"
        flipped = bytes([_KAT_E[0] ^ 1]) + _KAT_E[1:]
        if _verify(lib, pkey, flipped, signature):
            return "EVP_PKEY_verify accepted a changed digest"
    finally:
        lib.EVP_PKEY_free(pkey)
    return None


def _load() -> _State:
    if _state.loaded:
        return _state
    with _load_lock:
        if _state.loaded:
            return _state
        _state.reason = "no OpenSSL 3 libcrypto found"
        for name in _candidate_names():
            try:
                lib = ctypes.CDLL(name)
                _bind(lib)
            except (OSError, AttributeError):
                continue
            number = int(lib.OpenSSL_version_num())
            raw_version: bytes | None = lib.OpenSSL_version(0)
            version = raw_version.decode(errors="replace") if raw_version else hex(number)
            if number < MIN_VERSION:
                _state.reason = f"{version} is older than OpenSSL 3.0"
                continue
            try:
                failure = _self_test(lib)
            except ValueError as exc:
                failure = str(exc)
            if failure is not None:
                _state.reason = f"{version}: {failure}"
                continue
            _state.lib, _state.version, _state.reason = lib, version, ""
            break
        _state.loaded = True
    return _state


def available() -> bool:
    """True when a usable OpenSSL ≥ 3.0 libcrypto with SM2 was found and passed the self-test."""
    return _load().lib is not None


def library_version() -> str:
    """``OpenSSL_version(OPENSSL_VERSION)`` of the loaded library, or "" when unavailable."""
    return _load().version


def unavailable_reason() -> str:
    """Why :func:`available` is False ("" when it is True)."""
    return _load().reason


class VerifyKey:
    """An SM2 public key held as an OpenSSL ``EVP_PKEY``, freed when this object goes away."""

    __slots__ = ("__weakref__", "_finalizer", "_lib", "_pkey", "_spki")

    def __init__(self, spki: bytes) -> None:
        lib = _load().lib
        if lib is None:
            raise RuntimeError(f"OpenSSL SM2 backend unavailable: {_state.reason}")
        self._lib = lib
        self._spki = bytes(spki)
        self._pkey = _new_pkey(lib, self._spki)
        self._finalizer = weakref.finalize(self, lib.EVP_PKEY_free, self._pkey)
        # Not at interpreter exit: a daemon thread may still be inside verify(); the OS
        # reclaims the memory anyway.
        self._finalizer.atexit = False

    def __reduce__(self) -> tuple[type[VerifyKey], tuple[bytes]]:
        # copy/deepcopy/pickle rebuild a fresh EVP_PKEY instead of sharing (and double-freeing)
        # the address.
        return (VerifyKey, (self._spki,))

    def verify(
        self, e: bytes | bytearray | memoryview, signature: bytes | bytearray | memoryview
    ) -> bool:
        """True when ``signature`` (DER r,s) is valid over the 32-byte digest e = SM3(Z‖M).

        Never raises on bad input and never writes to stderr; OpenSSL's error queue is cleared
        after every failure.
        """
        if not isinstance(e, bytes | bytearray | memoryview) or not isinstance(
            signature, bytes | bytearray | memoryview
        ):
            return False
        e, signature = bytes(e), bytes(signature)
        if len(e) != DIGEST_BYTES or not signature:
            return False
        return _verify(self._lib, self._pkey, e, signature)
