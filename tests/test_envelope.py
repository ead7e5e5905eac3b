"""Field envelope format: versioned, AAD-bound SM4-GCM; any context mismatch fails closed."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from anju.errors import IntegrityError
from anju.kit.crypto import random_bytes, sm4_gcm_encrypt
from anju.kit.envelope import (
    FORMAT_V1,
    OVERHEAD_BYTES,
    FieldContext,
    blob_generation,
    field_aad,
    open_field,
    seal_field,
)

pytestmark = pytest.mark.req("R16", "L3", "L13")

KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
CTX = FieldContext("people", "document_number", "row-1", "subject-1")
VALUE = b"110105199001010022"


def test_round_trip_and_layout() -> None:
    blob = seal_field(KEY, 7, CTX, VALUE)
    assert blob[0] == FORMAT_V1
    assert struct.unpack(">I", blob[1:5])[0] == 7
    assert blob_generation(blob) == 7
    assert len(blob) == len(VALUE) + OVERHEAD_BYTES == len(VALUE) + 1 + 4 + 12 + 16
    assert VALUE not in blob
    assert open_field(KEY, CTX, blob) == VALUE


def test_every_seal_uses_a_fresh_nonce() -> None:
    first, second = seal_field(KEY, 1, CTX, VALUE), seal_field(KEY, 1, CTX, VALUE)
    assert first[5:17] != second[5:17]
    assert first != second


def test_aad_encoding_is_exactly_as_documented() -> None:
    def lp(text: str) -> bytes:
        raw = text.encode()
        return len(raw).to_bytes(4, "big") + raw

    expected = (
        b"anju/pi-field"
        + b"\x01"
        + (3).to_bytes(4, "big")
        + lp("people")
        + lp("document_number")
        + lp("row-1")
        + lp("subject-1")
    )
    assert field_aad(CTX, 3) == expected


def test_a_blob_built_by_the_documented_recipe_opens() -> None:
    nonce = random_bytes(12)
    header = b"\x01" + (2).to_bytes(4, "big")
    blob = header + nonce + sm4_gcm_encrypt(KEY, nonce, VALUE, field_aad(CTX, 2))
    assert open_field(KEY, CTX, blob) == VALUE


def test_length_prefixes_make_contexts_unambiguous() -> None:
    a = FieldContext("ab", "c", "r", "s")
    b = FieldContext("a", "bc", "r", "s")
    assert field_aad(a, 1) != field_aad(b, 1)
    with pytest.raises(IntegrityError):
        open_field(KEY, b, seal_field(KEY, 1, a, VALUE))


@pytest.mark.parametrize(
    "moved",
    [
        dataclasses.replace(CTX, table="guests"),
        dataclasses.replace(CTX, column="phone"),
        dataclasses.replace(CTX, row_id="row-2"),
        dataclasses.replace(CTX, subject_id="subject-2"),
    ],
    ids=["other-table", "other-column", "other-row", "other-subject"],
)
def test_a_value_moved_elsewhere_fails_to_authenticate(moved: FieldContext) -> None:
    blob = seal_field(KEY, 1, CTX, VALUE)
    with pytest.raises(IntegrityError):
        open_field(KEY, moved, blob)


def test_relabelled_generation_fails() -> None:
    blob = bytearray(seal_field(KEY, 1, CTX, VALUE))
    blob[1:5] = (2).to_bytes(4, "big")
    with pytest.raises(IntegrityError):
        open_field(KEY, CTX, bytes(blob))


@pytest.mark.parametrize("position", [5, 16, 17, 20, -16, -1])
def test_any_flipped_bit_fails(position: int) -> None:
    blob = bytearray(seal_field(KEY, 1, CTX, VALUE))
    blob[position] ^= 0x80
    with pytest.raises(IntegrityError):
        open_field(KEY, CTX, bytes(blob))


def test_wrong_key_fails() -> None:
    with pytest.raises(IntegrityError):
        open_field(random_bytes(16), CTX, seal_field(KEY, 1, CTX, VALUE))


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x01", b"\x02" + bytes(40), b"\x01" + bytes(31)],
    ids=["empty", "header-only", "unknown-format", "truncated"],
)
def test_malformed_blobs_are_refused(blob: bytes) -> None:
    with pytest.raises(IntegrityError):
        open_field(KEY, CTX, blob)


def test_empty_values_round_trip() -> None:
    assert open_field(KEY, CTX, seal_field(KEY, 1, CTX, b"")) == b""


@pytest.mark.parametrize("generation", [0, 2**32])
def test_generation_must_fit_the_format(generation: int) -> None:
    with pytest.raises(ValueError, match="generation"):
        seal_field(KEY, generation, CTX, VALUE)


def test_data_key_must_be_an_sm4_key() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        seal_field(KEY[:8], 1, CTX, VALUE)
