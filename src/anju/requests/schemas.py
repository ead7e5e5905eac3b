"""Request and response bodies of the requests API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from anju.requests.rules import (
    MAX_BODY_CHARS,
    MAX_DOORS,
    ActivityPurpose,
    RequestKind,
    RequestStatus,
)
from anju.requests.service import NewRequest

ID = Field(min_length=1, max_length=64)


class SelfRequestIn(BaseModel):
    """A request the person makes through their access link."""

    model_config = ConfigDict(extra="forbid")

    kind: RequestKind
    text: str = Field(max_length=4 * MAX_BODY_CHARS)  # past MAX_BODY_CHARS: 413
    place_ref: str | None = Field(default=None, max_length=100, pattern=r"^[\w\-./ #]+$")

    def new(self) -> NewRequest:
        return NewRequest(self.kind, self.text, self.place_ref)


class StaffRequestIn(SelfRequestIn):
    person_id: str = Field(pattern=r"^[0-9a-f]{32}$")


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: RequestStatus
    assignee_id: str | None = Field(default=None, min_length=1, max_length=64)


class TimelineOut(BaseModel):
    from_status: str | None
    to_status: str
    assignee_id: str | None
    actor: str
    at: datetime


class RequestOut(BaseModel):
    id: str
    person_id: str
    kind: str
    place_ref: str | None
    text: str | None
    status: str
    assignee_id: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    timeline: list[TimelineOut]


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str = ID
    access_subject: str = ID
    purpose: ActivityPurpose
    device_ids: list[str] = Field(min_length=1, max_length=MAX_DOORS)
    started_at: datetime
    ended_at: datetime | None = None
    request_id: str | None = Field(default=None, min_length=1, max_length=64)


class ActivityEndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ended_at: datetime


class ActivityOut(BaseModel):
    id: str
    account_id: str
    purpose: str
    device_ids: list[str]
    request_id: str | None
    started_at: datetime
    ended_at: datetime | None
    recorded_by: str
    access_used: list[dict[str, Any]] | None
