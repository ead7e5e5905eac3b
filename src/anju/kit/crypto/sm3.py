"""SM3 hash (GB/T 32905), HMAC-SM3, the GB/T 32918.4 key derivation function and HKDF-SM3."""

from __future__ import annotations

from cryptography.hazmat.primitives import constant_time, hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SM3 = hashes.SM3()
SM3_DIGEST_BYTES = 32


def sm3(data: bytes) -> bytes:
    """SM3 digest of ``data`` (32 bytes)."""
    h = hashes.Hash(_SM3)
    h.update(data)
    return h.finalize()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC-SM3 (RFC 2104 construction over SM3)."""
    h = hmac.HMAC(key, _SM3)
    h.update(data)
    return h.finalize()


def hmac_sm3_verify(key: bytes, data: bytes, tag: bytes) -> bool:
    """Constant-time check of an HMAC-SM3 tag."""
    return constant_time.bytes_eq(hmac_sm3(key, data), tag)


class HmacSm3:
    """A keyed HMAC-SM3 whose key schedule is computed once; ``digest`` copies it per call."""

    __slots__ = ("_base",)

    def __init__(self, key: bytes) -> None:
        self._base = hmac.HMAC(key, _SM3)

    def digest(self, data: bytes) -> bytes:
        """HMAC-SM3 of ``data`` under the fixed key."""
        h = self._base.copy()
        h.update(data)
        return h.finalize()


def kdf_sm3(z: bytes, length: int) -> bytes:
    """The key derivation function of GB/T 32918.4 §5.4.3 (counter mode over SM3)."""
    if length <= 0:
        raise ValueError("length must be positive")
    out = bytearray()
    counter = 1
    while len(out) < length:
        out += sm3(z + counter.to_bytes(4, "big"))
        counter += 1
    return bytes(out[:length])


def hkdf_sm3(ikm: bytes, *, length: int, info: bytes, salt: bytes | None = None) -> bytes:
    """HKDF (RFC 5869) with SM3, for deriving independent sub-keys from one secret."""
    return HKDF(algorithm=_SM3, length=length, salt=salt, info=info).derive(ikm)
