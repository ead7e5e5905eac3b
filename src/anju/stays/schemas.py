"""HTTP input and output of stays (pydantic). Times must carry a UTC offset (any offset)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SubjectId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str | None, Field(max_length=100)] = None
    phone: Annotated[str | None, Field(max_length=32)] = None


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room_id: Annotated[str, Field(min_length=1, max_length=36)]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    headcount: Annotated[int, Field(ge=1, le=50)] = 1
    channel: Literal["direct", "ota", "pms", "ical"] = "direct"
    external_ref: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    contact: ContactIn | None = None


class BookingOut(BaseModel):
    id: str
    room_id: str
    starts_at: str
    ends_at: str
    starts_local: str  # Asia/Shanghai
    ends_local: str
    headcount: int
    channel: str
    external_ref: str | None
    status: str
    contact: dict[str, str]  # masked forms only
    checked_in_at: str | None
    checked_out_at: str | None


class GuestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: SubjectId
    # The guest's phone SM2 public key (hex of 04‖x‖y): an eKey is issued for it.
    holder_key: Annotated[str | None, Field(min_length=128, max_length=130)] = None


class CheckInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    guests: Annotated[list[GuestIn], Field(min_length=1, max_length=50)]
    # Staff override of a headcount mismatch, with the reason (kept on the booking, audited).
    headcount_override_reason: Annotated[str | None, Field(min_length=1, max_length=200)] = None


class GuestKeysOut(BaseModel):
    subject_id: str
    grant_id: str
    passcode_id: str
    passcode: str  # shown once
    ekey_id: str | None
    ekey_tokens: dict[str, str]  # lock device id → token, shown once
    face_consented: bool


class CheckInOut(BaseModel):
    booking: BookingOut
    guests: list[GuestKeysOut]


class StayGuestOut(BaseModel):
    subject_id: str
    grant_id: str
    passcode_id: str
    ekey_id: str | None
    face_consented: bool
    checked_in_at: str


class VisitorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: SubjectId
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    doors: Literal["room", "common", "both"] = "both"


class VisitorOut(BaseModel):
    id: str
    subject_id: str
    grant_id: str
    doors: str
    valid_from: str
    valid_until: str
    passcode: str | None = None  # only in the answer that created it


class SecretOut(BaseModel):
    channel: str
    secret: str  # shown once


class FeedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room_id: Annotated[str, Field(min_length=1, max_length=36)]
    url: Annotated[str, Field(min_length=1, max_length=2000)]


class FeedOut(BaseModel):
    id: str
    room_id: str
    polled_at: str | None
    outcome: str | None


class WebhookResultOut(BaseModel):
    event: str
    outcome: str
    booking: str | None


def out(data: dict[str, Any]) -> BookingOut:
    return BookingOut(**data)
