"""Field-level envelope encryption: one PI value sealed with SM4-GCM under a subject's data key.

Pure functions, no I/O: the caller resolves the data key (``anju.privacy.vault`` does).

Ciphertext format (version 1), all integers big-endian::

    0x01 | generation:u32 | nonce:12 | SM4-GCM(ciphertext) | tag:16

``generation`` is the data subject's data-key generation used to seal the value, so the right key
is found without trial decryption. The nonce is 12 random bytes from the OS CSPRNG for every
value (96-bit random nonces: a data key seals far fewer than 2^32 values, so the GCM collision
bound is never approached).

Associated data (AAD) binds the ciphertext to where it lives and whose it is::

    b"anju/pi-field" | 0x01 | generation:u32 | lp(table) | lp(column) | lp(row_id) | lp(subject_id)

where ``lp(s)`` is ``len(utf8(s)):u32 || utf8(s)``. Every variable part is length-prefixed, so
no two different contexts encode to the same bytes (``("ab", "c")`` ≠ ``("a", "bc")``). A value
copied to another row, column, table or subject, or relabelled with another generation, fails
to authenticate and raises ``IntegrityError`` — it never decrypts to garbage.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from anju.errors import IntegrityError
from anju.kit.crypto import (
    SM4_GCM_NONCE_BYTES,
    SM4_GCM_TAG_BYTES,
    SM4_KEY_BYTES,
    random_bytes,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

FORMAT_V1 = 0x01
AAD_LABEL = b"anju/pi-field"
_HEADER = struct.Struct(">BI")
HEADER_BYTES = _HEADER.size  # 5
OVERHEAD_BYTES = HEADER_BYTES + SM4_GCM_NONCE_BYTES + SM4_GCM_TAG_BYTES  # 33
_U32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class FieldContext:
    """Where a sealed value lives and whose it is; all of it is bound into the AAD."""

    table: str
    column: str
    row_id: str
    subject_id: str


def _lp(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _U32.pack(len(raw)) + raw


def field_aad(context: FieldContext, generation: int) -> bytes:
    """The exact associated data for ``context`` sealed under data-key ``generation``."""
    return b"".join(
        (
            AAD_LABEL,
            _HEADER.pack(FORMAT_V1, generation),
            _lp(context.table),
            _lp(context.column),
            _lp(context.row_id),
            _lp(context.subject_id),
        )
    )


def seal_field(data_key: bytes, generation: int, context: FieldContext, plaintext: bytes) -> bytes:
    """Encrypt one field value; returns the version-1 ciphertext blob."""
    if len(data_key) != SM4_KEY_BYTES:
        raise ValueError("data key must be 16 bytes (SM4)")
    if not 0 < generation < 2**32:
        raise ValueError("data-key generation must fit in an unsigned 32-bit integer and be > 0")
    header = _HEADER.pack(FORMAT_V1, generation)
    nonce = random_bytes(SM4_GCM_NONCE_BYTES)
    return (
        header + nonce + sm4_gcm_encrypt(data_key, nonce, plaintext, field_aad(context, generation))
    )


def blob_generation(blob: bytes) -> int:
    """The data-key generation a ciphertext names; ``IntegrityError`` if it is not ours."""
    if len(blob) < OVERHEAD_BYTES or blob[0] != FORMAT_V1:
        raise IntegrityError("not an anju field ciphertext (unknown format or truncated)")
    return int(_HEADER.unpack_from(blob)[1])


def open_field(data_key: bytes, context: FieldContext, blob: bytes) -> bytes:
    """Decrypt one field value; ``IntegrityError`` on any tampering or context mismatch."""
    generation = blob_generation(blob)
    nonce = blob[HEADER_BYTES : HEADER_BYTES + SM4_GCM_NONCE_BYTES]
    sealed = blob[HEADER_BYTES + SM4_GCM_NONCE_BYTES :]
    return sm4_gcm_decrypt(data_key, nonce, sealed, field_aad(context, generation))
