"""What a registration carries, and its validation into clean values (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from anju.errors import InvalidInput
from anju.people.validation.documents import (
    PERSON_DOCUMENTS,
    DocumentType,
    parse_document_type,
    validate_document_number,
)
from anju.people.validation.errors import UnsupportedDocumentType
from anju.people.validation.names import (
    validate_address,
    validate_email,
    validate_organisation_name,
    validate_person_name,
    validate_phone,
)

KINDS = ("individual", "organisation")
#: The PI fields of a person row: column name -> inventory field name.
PI_FIELDS = {
    "name": "person.name",
    "document_number": "person.document_number",
    "phone": "person.phone",
    "email": "person.email",
    "address": "person.address",
    "legal_representative": "organisation.legal_representative",
}
CORRECTABLE = ("phone", "email", "address")


class InvalidKind(InvalidInput):
    code = "invalid_person_kind"


@dataclass(frozen=True)
class Application:
    """A registration as entered (front desk form, ID-card reader, CLI). Its repr shows no PI."""

    kind: str
    document_type: str
    document_number: str = field(repr=False)
    name: str = field(repr=False)
    phone: str | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)
    address: str | None = field(default=None, repr=False)
    legal_representative: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CleanApplication:
    """A validated, normalised registration."""

    kind: str
    document_type: DocumentType
    values: dict[str, str] = field(repr=False)  # column -> clear value, only fields present

    @property
    def document_number(self) -> str:
        return self.values["document_number"]

    @property
    def name(self) -> str:
        return self.values["name"]


def clean_contacts(phone: str | None, email: str | None, address: str | None) -> dict[str, str]:
    """The validated contact fields that are present."""
    values: dict[str, str] = {}
    if phone:
        values["phone"] = validate_phone(phone)
    if email:
        values["email"] = validate_email(email)
    if address:
        values["address"] = validate_address(address)
    return values


def clean_application(application: Application, today: date) -> CleanApplication:
    """Validate every field; the first problem raises its typed error (nothing is stored)."""
    if application.kind not in KINDS:
        raise InvalidKind(
            "登记类型须为 individual 或 organisation / kind must be individual or organisation"
        )
    document_type = parse_document_type(application.document_type)
    organisation = application.kind == "organisation"
    if organisation != (document_type is DocumentType.CREDIT_CODE):
        raise UnsupportedDocumentType(
            "个人使用身份证件，机构使用统一社会信用代码 / individuals register with an identity "
            "document, organisations with their unified social credit code",
            details={
                "supported": sorted(PERSON_DOCUMENTS if not organisation else ["credit_code"])
            },
        )
    values = {
        "document_number": validate_document_number(
            document_type, application.document_number, today
        ),
        "name": (
            validate_organisation_name(application.name)
            if organisation
            else validate_person_name(application.name)
        ),
    }
    values.update(clean_contacts(application.phone, application.email, application.address))
    if organisation:
        if not application.legal_representative:
            raise InvalidInput(
                "机构须登记法定代表人 / an organisation must name its legal representative"
            )
        values["legal_representative"] = validate_person_name(application.legal_representative)
    elif application.legal_representative:
        raise InvalidInput("个人没有法定代表人 / only organisations have a legal representative")
    return CleanApplication(application.kind, document_type, values)
