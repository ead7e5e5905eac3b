"""Request and response bodies of the officer API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from anju.officers.rules import MAX_PREFIXES, MAX_REASON, LegalBasis, check_basis


class BasisIn(BaseModel):
    """The legal basis every query states."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(max_length=32)
    case_number: str = Field(max_length=64)
    reason: str = Field(max_length=MAX_REASON)

    def checked(self) -> LegalBasis:
        return check_basis(self.type, self.case_number, self.reason)


class PersonQueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    basis: BasisIn
    document_type: str = Field(default="resident_id", max_length=64)
    document_number: str = Field(min_length=1, max_length=64)
    unmask: bool = False


class LockQueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    basis: BasisIn
    device_id: str | None = Field(default=None, min_length=1, max_length=32)
    room_id: str | None = Field(default=None, min_length=1, max_length=36)
    since: datetime
    until: datetime
    unmask: bool = False


class AnswerOut(BaseModel):
    query_id: str
    basis_type: str
    unmasked: bool
    result_count: int
    people: list[dict[str, Any]]
    grants: list[dict[str, Any]]
    unlocks: list[dict[str, Any]]


class JurisdictionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region_prefixes: list[str] = Field(max_length=MAX_PREFIXES)


class JurisdictionOut(BaseModel):
    account_id: str
    region_prefixes: list[str]


class OfficerQueryOut(BaseModel):
    id: str
    officer: str
    officer_org_id: str | None
    basis_type: str
    case_number: str
    reason: str
    kind: str
    criteria: dict[str, Any]
    unmask: bool
    outcome: str
    refusal: str | None
    subject_ids: list[str]
    result_count: int
    at: datetime
