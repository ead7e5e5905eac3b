"""Blind index: HMAC-SM3 of the normalised value under a per-field key from its own secret."""

from __future__ import annotations

import pytest

from anju.kit.blind_index import (
    INFO_PREFIX,
    BlindIndex,
    normalise_id_number,
    normalise_phone,
    normalise_text,
)
from anju.kit.crypto import hkdf_sm3, hmac_sm3, random_bytes

pytestmark = pytest.mark.req("L3", "L10", "L11")

SECRET = bytes(range(32))


@pytest.fixture
def index() -> BlindIndex:
    return BlindIndex(SECRET)


@pytest.mark.parametrize(
    ("field", "kind", "spellings"),
    [
        (
            "person.name",
            "text",
            ["Zhang San", "  zhang   SAN ", "ＺＨＡＮＧ　ｓａｎ", "ZHANG\tSAN"],
        ),
        ("person.name", "text", ["张三", " 张三 ", "张三\u3000"]),
        (
            "person.document_number",
            "id_number",
            [
                "11010519900101002X",
                "11010519900101002x",
                "110105 19900101 002x",
                "１１０１０５１９９００１０１００２Ｘ",
                "110105-19900101-002X",
            ],
        ),
        (
            "person.phone",
            "phone",
            [
                "13800138000",
                "+86 138 0013 8000",
                "+86-138-0013-8000",
                "008613800138000",
                "8613800138000",
                "（138）0013-8000",
                "１３８００１３８０００",
            ],
        ),
        ("person.email", "email", ["Zhang.San@Example.COM", " zhang.san@example.com "]),
    ],
)
def test_equal_values_in_different_spellings_index_equally(
    index: BlindIndex, field: str, kind: str, spellings: list[str]
) -> None:
    digests = {index.compute(field, s, kind) for s in spellings}  # type: ignore[arg-type]
    assert len(digests) == 1


def test_different_values_index_differently(index: BlindIndex) -> None:
    assert index.compute("person.phone", "13800138000", "phone") != index.compute(
        "person.phone", "13800138001", "phone"
    )


def test_fields_are_domain_separated(index: BlindIndex) -> None:
    value = "13800138000"
    names = ["person.name", "person.phone", "ctid.network_identifier", "person.name2"]
    assert len({index.compute(name, value) for name in names}) == len(names)


def test_construction_is_hmac_sm3_under_an_hkdf_derived_field_key(index: BlindIndex) -> None:
    field_key = hkdf_sm3(SECRET, length=32, info=INFO_PREFIX + b"person.document_number")
    expected = hmac_sm3(field_key, b"11010519900101002X")
    assert index.compute("person.document_number", "11010519900101002x", "id_number") == expected


def test_another_secret_gives_unrelated_indexes(index: BlindIndex) -> None:
    other = BlindIndex(random_bytes(32))
    assert index.compute("person.name", "张三") != other.compute("person.name", "张三")
    assert index.compute("person.name", "张三") == BlindIndex(SECRET).compute("person.name", "张三")


def test_truncated_form_is_a_prefix_of_the_full_index(index: BlindIndex) -> None:
    short = BlindIndex(SECRET, length=16)
    full = index.compute("person.name", "张三")
    assert len(full) == 32
    assert short.compute("person.name", "张三") == full[:16]


@pytest.mark.parametrize("length", [0, 7, 33])
def test_truncation_has_limits(length: int) -> None:
    with pytest.raises(ValueError, match="length"):
        BlindIndex(SECRET, length=length)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        BlindIndex(b"short")


@pytest.mark.parametrize("value", ["", "   ", "\u3000"])
def test_nothing_to_index_is_an_error(index: BlindIndex, value: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        index.compute("person.name", value)


def test_normalisers() -> None:
    assert normalise_text("  Ｚhang\u3000 SAN ") == "zhang san"
    assert normalise_id_number(" 110105199001010 02x ") == "11010519900101002X"
    assert normalise_phone("+86 (138) 0013-8000") == "13800138000"
    assert normalise_phone("010-12345678") == "01012345678"  # landline: digits kept as they are
