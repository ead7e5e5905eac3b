"""The stable error codes of bad registration input (docs/people.md lists them)."""

from __future__ import annotations

from anju.errors import InvalidInput


class InvalidDocumentNumber(InvalidInput):
    code = "invalid_document_number"


class InvalidCheckCharacter(InvalidInput):
    code = "invalid_check_character"


class ImplausibleBirthDate(InvalidInput):
    code = "implausible_birth_date"


class UnknownRegion(InvalidInput):
    code = "unknown_region"


class UnsupportedDocumentType(InvalidInput):
    code = "unsupported_document_type"


class InvalidName(InvalidInput):
    code = "invalid_name"


class InvalidContact(InvalidInput):
    code = "invalid_contact"


class FieldTooLong(InvalidInput):
    code = "field_too_long"
