"""Revocable face templates (F3; ISO/IEC 24745: irreversible, unlinkable, renewable).

A template is a keyed random projection of the embedding, binarised ("BioHashing"-style)::

    bits = sign(R_k · e)        R_k ∈ {−1, +1}^(1024×128) drawn from an SM4-CTR keystream under k

``k`` is derived per person and per template version with HKDF-SM3 from the deployment's secret
``biometric-template`` (keyring): ``k = HKDF-SM3(secret, salt="anju/face-template/v1",
info=len‖subject_id‖version)``. Two templates are compared by the fraction of differing bits.

- **Renewable / revocable**: a new version gives a new ``k``; the old template is deleted and no
  longer matches anything made under the new key.
- **Unlinkable**: templates of one face under two keys (two versions, two people's keys, or two
  deployments with different secrets) agree on about half their bits, like two strangers'.
- **Irreversible** (within limits stated in docs/biometrics.md): the bits are signs of random
  projections; without ``k`` they give no usable description of the embedding, and even with
  ``k`` only the embedding's direction can be approximated, never the photo. Templates are also
  stored encrypted (envelope, per subject key), and ``k`` never leaves the keyring side.

The matrix uses ±1 entries and integer keystream bits only, so a template is bit-for-bit the
same on every machine and numpy version.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from anju.face.embedding import Embedding
from anju.kit.crypto import hkdf_sm3, sm4_ctr_crypt

SCHEME = "anju-face-biohash/1"
BITS = 1024
EMBEDDING_DIMS = 128
TEMPLATE_KEY_BYTES = 32
_FORMAT = 0x01
_SALT = b"anju/face-template/v1"
_U32 = struct.Struct(">I")
#: Match when at most this fraction of bits differ (calibration: docs/biometrics.md).
HAMMING_THRESHOLD = 0.115


def derive_template_key(secret: bytes, subject_id: str, version: int) -> bytes:
    """The projection key of one subject's template ``version`` under a deployment secret."""
    if not 0 < version < 2**32:
        raise ValueError("template version must be a positive 32-bit integer")
    raw = subject_id.encode("utf-8")
    info = _U32.pack(len(raw)) + raw + _U32.pack(version)
    return hkdf_sm3(secret, length=TEMPLATE_KEY_BYTES, info=info, salt=_SALT)


def _projection(key: bytes) -> NDArray[np.float64]:
    if len(key) != TEMPLATE_KEY_BYTES:
        raise ValueError("template key must be 32 bytes")
    stream = sm4_ctr_crypt(key[:16], key[16:], bytes(BITS * EMBEDDING_DIMS // 8))
    signs = np.unpackbits(np.frombuffer(stream, dtype=np.uint8)).reshape(BITS, EMBEDDING_DIMS)
    return signs.astype(np.float64) * 2.0 - 1.0


@dataclass(frozen=True)
class ProtectedTemplate:
    """A binarised template. ``bytes(t)`` is its storage form (to be sealed, never kept clear)."""

    bits: bytes  # BITS / 8 bytes

    def __bytes__(self) -> bytes:
        return bytes([_FORMAT]) + self.bits

    def __repr__(self) -> str:
        return f"ProtectedTemplate({BITS} bits)"

    @classmethod
    def from_bytes(cls, data: bytes) -> ProtectedTemplate:
        if len(data) != 1 + BITS // 8 or data[0] != _FORMAT:
            raise ValueError("not an anju face template")
        return cls(bytes(data[1:]))


def protect(embedding: Embedding, key: bytes) -> ProtectedTemplate:
    """The protected template of an embedding under a template key."""
    if embedding.shape != (EMBEDDING_DIMS,):
        raise ValueError(f"embedding must have {EMBEDDING_DIMS} values")
    projected = _projection(key) @ embedding
    return ProtectedTemplate(np.packbits(projected > 0).tobytes())


def hamming_fraction(a: ProtectedTemplate, b: ProtectedTemplate) -> float:
    """Fraction of differing bits (0 = identical, about 0.5 = unrelated)."""
    x = np.frombuffer(a.bits, dtype=np.uint8) ^ np.frombuffer(b.bits, dtype=np.uint8)
    return float(np.unpackbits(x).sum()) / BITS


def templates_match(
    reference: ProtectedTemplate, probe: ProtectedTemplate, threshold: float = HAMMING_THRESHOLD
) -> bool:
    """The decision in the protected domain."""
    return hamming_fraction(reference, probe) <= threshold
