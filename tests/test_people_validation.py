"""Format checks of what people register: GB 11643 resident IDs, GB 32100 credit codes, the
other document types, names in any script, contacts — with stable error codes."""

from __future__ import annotations

from datetime import date

import pytest

from anju.errors import AnjuError
from anju.people.application import Application, clean_application
from anju.people.validation.credit_code import validate_credit_code
from anju.people.validation.documents import DocumentType, validate_document_number
from anju.people.validation.names import (
    validate_address,
    validate_email,
    validate_person_name,
    validate_phone,
)
from anju.people.validation.resident_id import validate_resident_id
from tests.support.people import credit_code_of, resident_id_number

TODAY = date(2026, 11, 24)
pytestmark = pytest.mark.req("N1", "N3")


def code_of(call: object) -> str:
    with pytest.raises(AnjuError) as raised:
        call()  # type: ignore[operator]
    return raised.value.code


def test_resident_id_check_character_is_iso_7064_mod_11_2() -> None:
    # The published GB 11643 example number.
    assert validate_resident_id("11010519491231002x", TODAY) == "11010519491231002X"
    assert validate_resident_id(resident_id_number("440305", "20000229", 123), TODAY)
    assert code_of(lambda: validate_resident_id("110105194912310021", TODAY)) == (
        "invalid_check_character"
    )


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("11010519491231002", "invalid_document_number"),  # 17 characters
        ("1101051949123100XX", "invalid_document_number"),
        ("99010519491231002X", "unknown_region"),  # 99 is no province
        (resident_id_number("110105", "19990230", 1), "implausible_birth_date"),  # 30 Feb
        (resident_id_number("110105", "18991231", 1), "implausible_birth_date"),  # before 1900
        (resident_id_number("110105", "20261125", 1), "implausible_birth_date"),  # tomorrow
    ],
)
def test_bad_resident_ids_have_stable_codes(number: str, code: str) -> None:
    assert code_of(lambda: validate_resident_id(number, TODAY)) == code


def test_credit_code_check_character_is_gb_32100() -> None:
    assert validate_credit_code("91350100M000100Y43") == "91350100M000100Y43"  # published example
    good = credit_code_of("91110105MA0123456")
    assert validate_credit_code(good.lower()) == good
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    assert code_of(lambda: validate_credit_code(wrong)) == "invalid_check_character"
    assert code_of(lambda: validate_credit_code("91110105MA0I234567")) == (
        "invalid_document_number"  # I is not in the GB 32100 alphabet
    )


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        (DocumentType.PASSPORT, "E12345678", "ABCDEFGH"),
        (DocumentType.HK_MACAO_PERMIT, "H12345678", "X12345678"),
        (DocumentType.HK_MACAO_PERMIT, "M1234567801", "M1234"),
        (DocumentType.TAIWAN_PERMIT, "12345678", "1234567"),
        (DocumentType.FOREIGN_PERMANENT_RESIDENCE, "USA110078091501", "US110078091501"),
        (
            DocumentType.FOREIGN_PERMANENT_RESIDENCE,
            resident_id_number("931840", "19800101", 12)[:17]
            + resident_id_number("931840", "19800101", 12)[17],
            "931840198001010120",
        ),
    ],
)
def test_each_document_type_has_its_format(kind: DocumentType, good: str, bad: str) -> None:
    assert validate_document_number(kind, good, TODAY) == good
    with pytest.raises(AnjuError) as raised:
        validate_document_number(kind, bad, TODAY)
    assert raised.value.code in ("invalid_document_number", "invalid_check_character")


def test_full_width_and_spaced_numbers_are_normalised() -> None:
    assert (
        validate_document_number(
            DocumentType.RESIDENT_ID, "１１０１０５ １９４９１２３１ ００２Ｘ", TODAY
        )
        == "11010519491231002X"
    )


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("𠮷田優子", "𠮷田優子"),  # Extension B
        ("买买提•艾力", "买买提·艾力"),  # bullet becomes the middle dot
        ("阿依古丽・吐尔逊", "阿依古丽·吐尔逊"),  # katakana middle dot too
        ("Nguye\u0302\u0303n Văn An", "Nguyễn Văn An"),  # NFC
        ("  O'Neil   Smith ", "O'Neil Smith"),
    ],
)
def test_names_in_any_script_are_nfc_normalised(raw: str, clean: str) -> None:
    assert validate_person_name(raw) == clean


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "invalid_name"),
        ("张\u0000三", "invalid_name"),
        ("张\u200b三", "invalid_name"),  # zero-width space (format character)
        ("Robert'); DROP TABLE people;--", "invalid_name"),
        ("<script>alert(1)</script>", "invalid_name"),
        ("买买提··艾力", "invalid_name"),
        ("·艾力", "invalid_name"),
        ("张三3", "invalid_name"),
        ("张" * 65, "field_too_long"),
    ],
)
def test_bad_names_are_refused(raw: str, code: str) -> None:
    assert code_of(lambda: validate_person_name(raw)) == code


def test_contacts() -> None:
    assert validate_phone("+86 139-1234-5678") == "13912345678"
    assert validate_phone("+85291234567") == "+85291234567"
    assert code_of(lambda: validate_phone("12345")) == "invalid_contact"
    assert validate_email(" Li.Si@Example.cn ") == "Li.Si@Example.cn"
    assert code_of(lambda: validate_email("a@b")) == "invalid_contact"
    assert code_of(lambda: validate_address("北京市'; DROP TABLE x;--")) == "invalid_contact"
    assert code_of(lambda: validate_address("北" * 201)) == "field_too_long"


def test_application_rules_for_kinds() -> None:
    org = Application(
        kind="organisation",
        document_type="credit_code",
        document_number=credit_code_of("91110105MA0123456"),
        name="北京安居科技有限公司（分公司）",
        legal_representative="欧阳娜娜",
    )
    assert clean_application(org, TODAY).values["legal_representative"] == "欧阳娜娜"
    no_rep = Application(**{**org.__dict__, "legal_representative": None})
    assert code_of(lambda: clean_application(no_rep, TODAY)) == "invalid_input"
    person_with_code = Application(**{**org.__dict__, "kind": "individual"})
    assert code_of(lambda: clean_application(person_with_code, TODAY)) == (
        "unsupported_document_type"
    )
    unknown = Application("individual", "driving_licence", "123", "张三")
    assert code_of(lambda: clean_application(unknown, TODAY)) == "unsupported_document_type"
    assert "11010519491231002X" not in repr(
        Application("individual", "resident_id", "11010519491231002X", "张三")
    )


def test_request_bodies_never_show_pi_in_repr_or_str() -> None:
    from anju.people.schemas import RegisterIn

    body = RegisterIn(
        document_type="resident_id",
        document_number="11010519491231002X",
        name="欧阳娜娜",
        phone="13912345678",
        method="staff_offline",
    )
    for text in (repr(body), str(body), repr(body.application())):
        for value in ("11010519491231002X", "欧阳娜娜", "13912345678"):
            assert value not in text
