"""Identity document types a person may register with, and the format check of each number.

Formats (what the issuing authority prints; a provider checks that the document exists):

- ``resident_id`` 居民身份证 (also the residence permits of Hong Kong, Macao and Taiwan
  residents, region 81/82/83): GB 11643, see :mod:`resident_id`.
- ``passport`` 护照: ICAO 9303 document number, 5–9 letters and digits with at least one digit.
- ``hk_macao_permit`` 港澳居民来往内地通行证: ``H`` (Hong Kong) or ``M`` (Macao) and 8 digits,
  optionally 2 more digits (the renewal count printed on older cards).
- ``taiwan_permit`` 台湾居民来往大陆通行证: 8 digits (2015 card) or 10 digits (older booklet).
- ``foreign_permanent_residence`` 外国人永久居留身份证: 2017 card — 3-letter country code and
  12 digits; 2023 card — 18 characters starting with 9 (province, 3-digit country code, birth
  date, sequence, MOD 11-2 check character as in GB 11643).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from enum import StrEnum

from anju.people.validation.errors import (
    ImplausibleBirthDate,
    InvalidCheckCharacter,
    InvalidDocumentNumber,
    UnsupportedDocumentType,
)
from anju.people.validation.resident_id import (
    EARLIEST_BIRTH,
    birth_date_of,
    check_character,
    validate_resident_id,
)

MAX_DOCUMENT_NUMBER = 32


class DocumentType(StrEnum):
    RESIDENT_ID = "resident_id"
    PASSPORT = "passport"
    HK_MACAO_PERMIT = "hk_macao_permit"
    TAIWAN_PERMIT = "taiwan_permit"
    FOREIGN_PERMANENT_RESIDENCE = "foreign_permanent_residence"
    #: Organisations register with their GB 32100 unified social credit code.
    CREDIT_CODE = "credit_code"


DOCUMENT_LABELS = {
    DocumentType.RESIDENT_ID: ("居民身份证", "resident ID card"),
    DocumentType.PASSPORT: ("护照", "passport"),
    DocumentType.HK_MACAO_PERMIT: ("港澳居民来往内地通行证", "Mainland travel permit (HK/Macao)"),
    DocumentType.TAIWAN_PERMIT: ("台湾居民来往大陆通行证", "Mainland travel permit (Taiwan)"),
    DocumentType.FOREIGN_PERMANENT_RESIDENCE: (
        "外国人永久居留身份证",
        "foreigner's permanent residence ID card",
    ),
    DocumentType.CREDIT_CODE: ("统一社会信用代码", "unified social credit code"),
}
PERSON_DOCUMENTS = frozenset(DocumentType) - {DocumentType.CREDIT_CODE}

_PASSPORT = re.compile(r"^(?=.*\d)[A-Z0-9]{5,9}$")
_HK_MACAO = re.compile(r"^[HM]\d{8}(\d{2})?$")
_TAIWAN = re.compile(r"^(\d{8}|\d{10})$")
_FPR_2017 = re.compile(r"^[A-Z]{3}\d{12}$")
_FPR_2023 = re.compile(r"^9\d{16}[\dX]$")


def parse_document_type(name: str) -> DocumentType:
    """The document type called ``name``; ``unsupported_document_type`` lists the known ones."""
    try:
        return DocumentType(name)
    except ValueError:
        raise UnsupportedDocumentType(
            "不支持的证件类型 / unsupported document type",
            details={"supported": sorted(t.value for t in DocumentType)},
        ) from None


def normalise_number(value: str) -> str:
    """NFKC (full-width digits become ASCII), no spaces or hyphens, upper case."""
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", value)).upper()


def validate_document_number(kind: DocumentType, value: str, today: date) -> str:
    """The normalised number if it has the format of ``kind``, else a typed error."""
    if len(value) > MAX_DOCUMENT_NUMBER * 2:
        raise InvalidDocumentNumber("证件号码过长 / document number too long")
    number = normalise_number(value)
    if kind is DocumentType.RESIDENT_ID:
        return validate_resident_id(number, today)
    if kind is DocumentType.CREDIT_CODE:
        from anju.people.validation.credit_code import validate_credit_code

        return validate_credit_code(number)
    if kind is DocumentType.FOREIGN_PERMANENT_RESIDENCE and _FPR_2023.match(number):
        return _validate_fpr_2023(number, today)
    pattern = {
        DocumentType.PASSPORT: _PASSPORT,
        DocumentType.HK_MACAO_PERMIT: _HK_MACAO,
        DocumentType.TAIWAN_PERMIT: _TAIWAN,
        DocumentType.FOREIGN_PERMANENT_RESIDENCE: _FPR_2017,
    }[kind]
    if not pattern.match(number):
        zh, en = DOCUMENT_LABELS[kind]
        raise InvalidDocumentNumber(
            f"{zh}号码格式无效 / not a valid {en} number", details={"document_type": kind.value}
        )
    return number


def _validate_fpr_2023(number: str, today: date) -> str:
    try:
        born = birth_date_of(number)
    except ValueError:
        raise ImplausibleBirthDate(
            "永久居留身份证号码中的出生日期不存在 / the birth date in the permanent residence "
            "ID number is not a calendar date"
        ) from None
    if not EARLIEST_BIRTH <= born <= today:
        raise ImplausibleBirthDate(
            "永久居留身份证号码中的出生日期不合理 / the birth date in the permanent residence "
            "ID number is before 1900 or in the future"
        )
    if check_character(number[:17]) != number[17]:
        raise InvalidCheckCharacter(
            "永久居留身份证号码校验码错误 / wrong check character in the permanent residence "
            "ID number"
        )
    return number
