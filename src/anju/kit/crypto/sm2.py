"""SM2 (GB/T 32918) signatures and public-key encryption over gmssl-pyx (GmSSL 3.2).

Verification runs on the system OpenSSL 3 ``libcrypto`` (``anju.kit.crypto.openssl_sm2``,
through ``ctypes``) when one is usable — about twice GmSSL's speed and silent on failure — and
on GmSSL otherwise; :func:`verify_backend` says which.

Signing computes Z = SM3(ENTL‖ID‖a‖b‖xG‖yG‖xA‖yA) once per key and signer id, then
e = SM3(Z‖M), and signs the digest with ``sm2_sign_sm3_digest`` — the library's one-call
``sm2_sign`` recomputes Z every time and is about 6× slower. GmSSL draws the signing nonce and
generated keys from ``/dev/urandom`` (the OS CSPRNG). Keys export as PEM SubjectPublicKeyInfo /
PKCS#8 with the SM2 curve OID, which the ``openssl`` command line reads.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Literal

import gmssl_pyx

from anju.errors import CryptoError, IntegrityError
from anju.kit.crypto import der, openssl_sm2
from anju.kit.crypto.sm3 import sm3

DEFAULT_SIGNER_ID = b"1234567812345678"

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_SM2_CURVE = "1.2.156.10197.1.301"
_ALGORITHM = der.sequence(der.oid(OID_EC_PUBLIC_KEY), der.oid(OID_SM2_CURVE))
_CURVE_BYTES = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))


_force_gmssl_verify = False


def verify_backend() -> Literal["openssl", "gmssl"]:
    """The library ``SM2PublicKey.verify``/``verify_digest`` use: OpenSSL 3 when usable."""
    if not _force_gmssl_verify and openssl_sm2.available():
        return "openssl"
    return "gmssl"


def force_gmssl_verify(enabled: bool = True) -> None:
    """Escape hatch (tests, diagnosis): verify with GmSSL even when OpenSSL is usable."""
    global _force_gmssl_verify
    _force_gmssl_verify = enabled


def sm2_z(public_key: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
    """Z_A of GB/T 32918.2 §5.5 for a 64-byte public key ``x‖y``."""
    entl = (len(signer_id) * 8).to_bytes(2, "big")
    return sm3(entl + signer_id + _CURVE_BYTES + public_key)


def _pem(label: str, body: bytes) -> str:
    b64 = base64.encodebytes(body).decode().replace("\n", "")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def _unpem(text: str | bytes, label: str) -> bytes:
    s = text.decode() if isinstance(text, bytes) else text
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    if begin not in s or end not in s:
        raise IntegrityError(f"not a PEM {label}")
    body = s.split(begin, 1)[1].split(end, 1)[0]
    try:
        return base64.b64decode("".join(body.split()), validate=True)
    except ValueError:
        raise IntegrityError(f"PEM {label} is not valid base64") from None


def _point_add(p1: tuple[int, int] | None, p2: tuple[int, int] | None) -> tuple[int, int] | None:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    if p1 == p2:
        lam = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


def _public_from_private(d: int) -> bytes:
    """d·G in plain Python: only used when importing a private key without its public half."""
    result: tuple[int, int] | None = None
    addend: tuple[int, int] | None = (GX, GY)
    while d:
        if d & 1:
            result = _point_add(result, addend)
        addend = _point_add(addend, addend)
        d >>= 1
    if result is None:
        raise CryptoError("invalid SM2 private key")
    return result[0].to_bytes(32, "big") + result[1].to_bytes(32, "big")


def signature_to_rs(signature: bytes) -> tuple[int, int]:
    """Split a DER SM2 signature into (r, s); raises IntegrityError when malformed."""
    items = der.read_sequence(signature)
    if len(items) != 2:
        raise IntegrityError("SM2 signature must hold exactly r and s")
    r, s = (der.read_integer(t, v) for t, v in items)
    if not (0 < r < N and 0 < s < N):
        raise IntegrityError("SM2 signature r or s out of range")
    return r, s


def rs_to_signature(r: int, s: int) -> bytes:
    """DER-encode (r, s) as an SM2 signature."""
    return der.sequence(der.integer(r), der.integer(s))


@dataclass(frozen=True)
class SM2PublicKey:
    """An SM2 public key (64 bytes ``x‖y``, validated to lie on the curve)."""

    raw: bytes
    _z_cache: dict[bytes, bytes] = field(default_factory=dict, compare=False, repr=False)
    # "openssl" -> the key as an OpenSSL EVP_PKEY (freed with this object), or None when
    # OpenSSL refused it (then GmSSL verifies).
    _verifier_cache: dict[str, openssl_sm2.VerifyKey | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        raw = self.raw[1:] if len(self.raw) == 65 and self.raw[0] == 4 else self.raw
        try:
            normalised = gmssl_pyx.normalize_sm2_public_key(raw)
        except (gmssl_pyx.InvalidValueError, ValueError, TypeError):
            raise IntegrityError("not a valid SM2 public key (not a point on the curve)") from None
        object.__setattr__(self, "raw", bytes(normalised))

    def z(self, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        """Z for this key and signer id (cached)."""
        cached = self._z_cache.get(signer_id)
        if cached is None:
            cached = self._z_cache[signer_id] = sm2_z(self.raw, signer_id)
        return cached

    def digest(self, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        """e = SM3(Z‖M), the value an SM2 signature covers."""
        return sm3(self.z(signer_id) + message)

    def verify(
        self, message: bytes, signature: bytes, signer_id: bytes = DEFAULT_SIGNER_ID
    ) -> bool:
        """True when ``signature`` (DER r,s) is valid for ``message``; False otherwise."""
        return self.verify_digest(self.digest(message, signer_id), signature)

    def verify_digest(self, e: bytes, signature: bytes) -> bool:
        """Verify a signature over a precomputed e = SM3(Z‖M); False (never an exception) when
        the signature is invalid or malformed. Backend: :func:`verify_backend`."""
        try:
            signature_to_rs(signature)  # strict DER and 0 < r, s < n, for either backend
        except (IntegrityError, ValueError, TypeError):
            return False
        if verify_backend() == "openssl":
            verifier = self._openssl_verifier()
            if verifier is not None:
                return verifier.verify(e, signature)
        try:
            return bool(gmssl_pyx.sm2_verify_sm3_digest(self.raw, e, signature))
        except (gmssl_pyx.GmsslInnerError, ValueError, TypeError):
            return False

    def _openssl_verifier(self) -> openssl_sm2.VerifyKey | None:
        """This key as an OpenSSL EVP_PKEY, built once (thread-safe: ``setdefault`` is atomic,
        a losing duplicate is freed by its finalizer)."""
        try:
            return self._verifier_cache["openssl"]
        except KeyError:
            pass
        built: openssl_sm2.VerifyKey | None
        try:
            built = openssl_sm2.VerifyKey(self.to_der())
        except (ValueError, RuntimeError):
            built = None
        return self._verifier_cache.setdefault("openssl", built)

    def encrypt(self, plaintext: bytes) -> bytes:
        """SM2 public-key encryption; DER C1C3C2 ciphertext. 1–255 bytes (wrap keys, not data)."""
        if not 1 <= len(plaintext) <= 255:
            raise CryptoError("SM2 encryption takes 1 to 255 bytes; encrypt a data key instead")
        return bytes(gmssl_pyx.sm2_encrypt(self.raw, plaintext))

    def to_der(self) -> bytes:
        """SubjectPublicKeyInfo DER."""
        return der.sequence(_ALGORITHM, der.tlv(der.BIT_STRING, b"\x00\x04" + self.raw))

    def to_pem(self) -> str:
        """SubjectPublicKeyInfo PEM (``-----BEGIN PUBLIC KEY-----``)."""
        return _pem("PUBLIC KEY", self.to_der())

    def fingerprint(self) -> str:
        """Hex SM3 of the SubjectPublicKeyInfo DER (a stable key id)."""
        return sm3(self.to_der()).hex()

    @classmethod
    def from_der(cls, data: bytes) -> SM2PublicKey:
        """Parse SubjectPublicKeyInfo DER with the SM2 curve."""
        items = der.read_sequence(data)
        if len(items) != 2 or items[0] != (der.SEQUENCE, _ALGORITHM[2:]):
            raise IntegrityError("not an SM2 SubjectPublicKeyInfo")
        tag, bits = items[1]
        if tag != der.BIT_STRING or bits[:2] != b"\x00\x04" or len(bits) != 66:
            raise IntegrityError("SM2 public key must be an uncompressed point")
        return cls(bits[2:])

    @classmethod
    def from_pem(cls, text: str | bytes) -> SM2PublicKey:
        """Parse a ``PUBLIC KEY`` PEM."""
        return cls.from_der(_unpem(text, "PUBLIC KEY"))


class SM2PrivateKey:
    """An SM2 key pair. The private scalar stays inside this object; use ``public_key`` freely."""

    __slots__ = ("_d", "public_key")

    def __init__(self, private: bytes, public: bytes | None = None) -> None:
        if len(private) != 32 or not 0 < int.from_bytes(private, "big") < N - 1:
            raise CryptoError("SM2 private key must be 32 bytes in [1, n-2]")
        self._d = private
        derived = _public_from_private(int.from_bytes(private, "big")) if public is None else public
        self.public_key = SM2PublicKey(derived)

    def __repr__(self) -> str:
        return f"SM2PrivateKey(public={self.public_key.fingerprint()[:16]}…)"

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        """A fresh key pair (GmSSL draws it from /dev/urandom)."""
        public, private = gmssl_pyx.sm2_key_generate()
        return cls(bytes(private), bytes(public))

    def private_bytes(self) -> bytes:
        """The 32-byte private scalar — for sealed storage by a key provider only."""
        return self._d

    def sign(self, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        """SM2 signature (DER r,s) over SM3(Z‖message)."""
        return self.sign_digest(self.public_key.digest(message, signer_id))

    def sign_digest(self, e: bytes) -> bytes:
        """Sign a precomputed e = SM3(Z‖M)."""
        if len(e) != 32:
            raise CryptoError("SM2 digest must be 32 bytes")
        return bytes(gmssl_pyx.sm2_sign_sm3_digest(self._d, e))

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt a DER C1C3C2 SM2 ciphertext; IntegrityError when it does not check."""
        try:
            return bytes(gmssl_pyx.sm2_decrypt(self._d, ciphertext))
        except (gmssl_pyx.GmsslInnerError, ValueError):
            raise IntegrityError("SM2 ciphertext did not decrypt (tampered or wrong key)") from None

    def to_pkcs8_der(self) -> bytes:
        """PKCS#8 PrivateKeyInfo DER with the SM2 curve (for interoperability tests and export)."""
        ec_private = der.sequence(
            der.integer(1),
            der.tlv(der.OCTET_STRING, self._d),
            der.tlv(0xA1, der.tlv(der.BIT_STRING, b"\x00\x04" + self.public_key.raw)),
        )
        return der.sequence(der.integer(0), _ALGORITHM, der.tlv(der.OCTET_STRING, ec_private))

    def to_pkcs8_pem(self) -> str:
        """``-----BEGIN PRIVATE KEY-----`` PEM. Handle as a secret."""
        return _pem("PRIVATE KEY", self.to_pkcs8_der())

    @classmethod
    def from_pkcs8_pem(cls, text: str | bytes) -> SM2PrivateKey:
        """Parse a PKCS#8 SM2 private key PEM (as written by ``openssl genpkey``)."""
        items = der.read_sequence(_unpem(text, "PRIVATE KEY"))
        if (
            len(items) < 3
            or items[1] != (der.SEQUENCE, _ALGORITHM[2:])
            or items[2][0] != der.OCTET_STRING
        ):
            raise IntegrityError("not an SM2 PKCS#8 private key")
        inner = der.read_sequence(items[2][1])
        if len(inner) < 2 or inner[1][0] != der.OCTET_STRING:
            raise IntegrityError("malformed SM2 ECPrivateKey")
        d = inner[1][1].rjust(32, b"\x00")
        public: bytes | None = None
        for tag, value in inner[2:]:
            if tag == 0xA1:
                _, bits, _ = der.read_tlv(value)
                public = bits[2:] if bits[:2] == b"\x00\x04" else None
        key = cls(d, public)
        if public is not None:
            # The stored public key must belong to d, or ``public_key`` (and every fingerprint
            # and Z derived from it) would describe another key. A signature made with d that
            # verifies under the stored point proves it, using only GmSSL's own d arithmetic.
            probe = key.public_key.digest(b"anju: PKCS#8 key pair check")
            if not key.public_key.verify_digest(probe, key.sign_digest(probe)):
                raise IntegrityError("SM2 PKCS#8 public key does not match its private key")
        return key
