"""Masked display (L11): the documented shapes, and never an exception on odd input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anju.kit.masking import (
    HIDDEN,
    MASK_RULES,
    mask,
    mask_address,
    mask_email,
    mask_generic,
    mask_id_number,
    mask_name,
    mask_phone,
)

pytestmark = pytest.mark.req("L11", "L3")


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("11010519900101002X", "110105********002X"),
        ("11010519900101002x", "110105********002X"),
        ("110105 19900101 002X", "110105********002X"),
        ("110105900101002", "110105*****1002"),  # 15-digit first-generation card
        ("E12345678", "E*******8"),  # short documents fall back to generic
    ],
)
def test_id_numbers(value: str, masked: str) -> None:
    assert mask_id_number(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+86 138 1234 5678", "138****5678"),
        ("008613812345678", "138****5678"),
        ("010-87654321", "010****4321"),
        ("12345", "1***5"),
    ],
)
def test_phones(value: str, masked: str) -> None:
    assert mask_phone(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("张三", "张*"),
        ("欧阳娜娜", "欧***"),
        ("买买提·艾力", "买**·**"),
        ("阿卜杜拉•买买提", "阿***•***"),
        ("张", "*"),
        ("𠮷田", "𠮷*"),
        ("王𠮷", "王*"),
        ("John Smith", "J***"),
        ("émilie", "é***"),
    ],
)
def test_names(value: str, masked: str) -> None:
    assert mask_name(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("北京市朝阳区建国路88号SOHO现代城A座1201", "北京市朝阳区****"),
        ("广东省深圳市南山区科技园科苑路15号", "广东省深圳市南山区****"),
        ("新疆维吾尔自治区乌鲁木齐市天山区解放北路1号", "新疆维吾尔自治区乌鲁木齐市天山区****"),
        ("浙江省杭州市西湖区", "浙江省杭州市西湖区"),
        ("山东省济南市市中区经七路1号", "山东省济南市市中区****"),
        ("12 Baker Street, London", "1*********************n"),
    ],
)
def test_addresses(value: str, masked: str) -> None:
    assert mask_address(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [("zhangsan@example.com", "z***@example.com"), ("a@b.cn", "a***@b.cn"), ("@x", "@*")],
)
def test_emails(value: str, masked: str) -> None:
    assert mask_email(value) == masked


def test_generic() -> None:
    assert [mask_generic(v) for v in ["", "a", "ab", "abc", "abcd", "𠮷𠮷𠮷𠮷"]] == [
        "",
        "*",
        "a*",
        "a**",
        "a**d",
        "𠮷**𠮷",
    ]


def test_dispatch_hides_unknown_rules_and_none() -> None:
    assert mask("hidden", "face-template-bytes") == HIDDEN
    assert mask("no-such-rule", "张三") == HIDDEN
    assert mask("name", None) == ""


ODD = ["", " ", "\u3000", "·", "··", "x", "𠮷", "\x00", "\ud800", "🙂🙂", "a" * 10_000, "@", "+86"]


@pytest.mark.parametrize("rule", MASK_RULES)
@pytest.mark.parametrize("value", ODD)
def test_odd_input_never_raises(rule: str, value: str) -> None:
    assert isinstance(mask(rule, value), str)


@pytest.mark.parametrize("rule", MASK_RULES)
@given(value=st.text(max_size=40))
def test_any_text_masks_without_error_or_leak(rule: str, value: str) -> None:
    masked = mask(rule, value)
    assert isinstance(masked, str)
    if len(value.strip()) >= 12 and rule != "address":
        assert value.strip() not in masked
