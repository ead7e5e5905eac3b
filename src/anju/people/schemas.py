"""HTTP bodies of /api/v1/people. Sizes here only bound the request; the domain checks say
what is wrong with a value (stable codes such as ``field_too_long``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from anju.biometrics.schemas import Base64Image, DeviceLabel
from anju.people.application import Application

LONG = 4096


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["individual", "organisation"] = "individual"
    document_type: str = Field(max_length=64)
    document_number: str = Field(max_length=LONG)
    name: str = Field(max_length=LONG)
    phone: str | None = Field(default=None, max_length=LONG)
    email: str | None = Field(default=None, max_length=LONG)
    address: str | None = Field(default=None, max_length=LONG)
    legal_representative: str | None = Field(default=None, max_length=LONG)
    method: Literal["ctid", "staff_offline", "online_face_check"]
    original_document_checked: bool = False
    face_capture_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    subject_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    consent_receipt_id: str | None = Field(default=None, max_length=64)

    def application(self) -> Application:
        return Application(
            kind=self.kind,
            document_type=self.document_type,
            document_number=self.document_number,
            name=self.name,
            phone=self.phone,
            email=self.email,
            address=self.address,
            legal_representative=self.legal_representative,
        )

    def __repr__(self) -> str:  # the body is PI: never shown in a traceback
        return f"RegisterIn(kind={self.kind!r}, document_type={self.document_type!r}, …)"

    __str__ = __repr__


class IdCardRegisterIn(BaseModel):
    """An ID-card reader's chip data, its photo and a live capture (base64, never multipart)."""

    model_config = ConfigDict(extra="forbid")

    document_type: Literal["resident_id", "foreign_permanent_residence"] = "resident_id"
    document_number: str = Field(max_length=LONG)
    name: str = Field(max_length=LONG)
    address: str | None = Field(default=None, max_length=LONG)
    phone: str | None = Field(default=None, max_length=LONG)
    email: str | None = Field(default=None, max_length=LONG)
    photo: Base64Image
    live: Base64Image
    device: DeviceLabel = "id-card-reader"
    consent_receipt_id: str | None = Field(default=None, max_length=64)
    subject_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")

    def application(self) -> Application:
        return Application(
            kind="individual",
            document_type=self.document_type,
            document_number=self.document_number,
            name=self.name,
            phone=self.phone,
            email=self.email,
            address=self.address,
        )

    def __repr__(self) -> str:
        return f"IdCardRegisterIn(document_type={self.document_type!r}, …)"

    __str__ = __repr__


class RegistrationOut(BaseModel):
    outcome: Literal["registered", "rejected"]
    subject_id: str
    verification_id: str
    person_id: str | None
    reason: str
    face_decision: str | None


class PersonOut(BaseModel):
    id: str
    subject_id: str
    kind: str
    document_type: str
    status: str
    masked: dict[str, str]


class LookupIn(BaseModel):
    """Either a document (type and number) or a phone number."""

    model_config = ConfigDict(extra="forbid")

    document_type: str | None = Field(default=None, max_length=64)
    document_number: str | None = Field(default=None, max_length=LONG)
    phone: str | None = Field(default=None, max_length=LONG)


class LookupOut(BaseModel):
    people: list[PersonOut]


class RevealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: list[str] = Field(min_length=1, max_length=6)
    purpose: str = Field(max_length=64)


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, max_length=LONG)
    email: str | None = Field(default=None, max_length=LONG)
    address: str | None = Field(default=None, max_length=LONG)

    def changes(self) -> dict[str, str | None]:
        """Only the fields the caller sent (an empty string clears a field)."""
        return {k: getattr(self, k) for k in self.model_fields_set}


class DeletionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["subject_request", "operator_request"]


class LinkOut(BaseModel):
    token: str
    link_id: str
    expires_at: datetime


class TrailOut(BaseModel):
    entries: list[dict[str, Any]]
