"""Legal bases of officer queries, their validation, query windows and the errors."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from anju.errors import Forbidden, InvalidInput

MAX_RESULTS = 500  # rows of each kind an answer carries at most
MAX_WINDOW = timedelta(days=31)
MAX_PREFIXES = 50
_CASE_NUMBER = re.compile(r"^[0-9A-Za-z\u3400-\u9fff()（）〔〕\[\]_/.\-]{4,64}$")
MIN_REASON, MAX_REASON = 10, 500


class OutsideJurisdiction(Forbidden):
    code = "outside_jurisdiction"


class UnmaskNotAllowed(Forbidden):
    code = "unmask_not_allowed"


class BasisType(StrEnum):
    CRIMINAL_INVESTIGATION = "criminal_investigation"
    EMERGENCY_RESCUE = "emergency_rescue"
    PUBLIC_SECURITY_ADMIN = "public_security_admin"
    HOUSING_INSPECTION = "housing_inspection"


@dataclass(frozen=True)
class BasisInfo:
    title_zh: str
    title_en: str
    unmask: bool  # may the answer carry clear names and document numbers


BASES: dict[BasisType, BasisInfo] = {
    BasisType.CRIMINAL_INVESTIGATION: BasisInfo("刑事侦查", "criminal investigation", True),
    BasisType.EMERGENCY_RESCUE: BasisInfo("紧急救助", "emergency rescue", True),
    BasisType.PUBLIC_SECURITY_ADMIN: BasisInfo(
        "治安行政管理", "public-security administration", False
    ),
    BasisType.HOUSING_INSPECTION: BasisInfo("住房监督检查", "housing inspection", False),
}


@dataclass(frozen=True)
class LegalBasis:
    """Why an officer asks: a basis type, the case or warrant number and a reason."""

    type: BasisType
    case_number: str
    reason: str


def check_basis(type_name: str, case_number: str, reason: str) -> LegalBasis:
    """A validated legal basis, or ``invalid_input`` naming the field."""
    try:
        basis_type = BasisType(type_name)
    except ValueError:
        raise InvalidInput(
            "未知的法律依据类型 / unknown legal basis type",
            details={"field": "basis.type", "known": [b.value for b in BasisType]},
        ) from None
    number = unicodedata.normalize("NFC", case_number).strip()
    if not _CASE_NUMBER.fullmatch(number):
        raise InvalidInput(
            "案件或文书编号须为 4–64 位字母、数字、汉字或 ()〔〕[]_/.- / case or warrant number: "
            "4–64 letters, digits, CJK or ()〔〕[]_/.-",
            details={"field": "basis.case_number"},
        )
    text = unicodedata.normalize("NFC", reason).strip()
    if not MIN_REASON <= len(text) <= MAX_REASON or any(
        unicodedata.category(c) == "Cc" for c in text
    ):
        raise InvalidInput(
            f"事由须为 {MIN_REASON}–{MAX_REASON} 个可打印字符 / reason: {MIN_REASON}–{MAX_REASON} "
            "printable characters",
            details={"field": "basis.reason"},
        )
    return LegalBasis(basis_type, number, text)


def check_unmask(basis: LegalBasis, unmask: bool) -> None:
    """Refuse clear values unless the basis allows them."""
    if unmask and not BASES[basis.type].unmask:
        raise UnmaskNotAllowed(
            "该法律依据不允许查看明文 / this legal basis does not allow unmasked results",
            details={
                "basis_type": basis.type.value,
                "unmask_allowed_for": [b.value for b, i in BASES.items() if i.unmask],
            },
        )


def check_window(since: datetime, until: datetime) -> None:
    """A query window: since < until, at most ``MAX_WINDOW`` long."""
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput("时间须带时区 / times need a UTC offset", details={"field": "since"})
    if not since < until <= since + MAX_WINDOW:
        raise InvalidInput(
            "时间窗须为开始早于结束且不超过 31 天 / the window must start before it ends and "
            "span at most 31 days",
            details={"field": "until"},
        )


def outside() -> OutsideJurisdiction:
    return OutsideJurisdiction(
        "不在您的辖区内或不存在 / outside your jurisdiction or does not exist"
    )
