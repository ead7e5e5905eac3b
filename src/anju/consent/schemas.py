"""Request and response bodies of the notice and consent API (docs/consent.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from anju.consent.models import ConsentEvent, Notice
from anju.consent.notices import MAX_ITEMS, MAX_TEXT, MAX_TITLE, items_from_json
from anju.consent.rules import ConsentCheck

SubjectField = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class NoticeItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(max_length=64)
    categories: list[str] = Field(min_length=1, max_length=16)
    required: bool


class NoticeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(max_length=64)
    title_zh: str = Field(min_length=1, max_length=MAX_TITLE)
    title_en: str = Field(min_length=1, max_length=MAX_TITLE)
    text_zh: str = Field(min_length=1, max_length=MAX_TEXT)
    text_en: str = Field(min_length=1, max_length=MAX_TEXT)
    items: list[NoticeItemBody] = Field(min_length=1, max_length=MAX_ITEMS)


class NoticeOut(BaseModel):
    id: str
    kind: str
    version: int
    title_zh: str
    title_en: str
    text_zh: str
    text_en: str
    items: list[dict[str, Any]]
    content_hash: str
    published_at: datetime

    @classmethod
    def of(cls, row: Notice) -> NoticeOut:
        return cls(
            id=row.id,
            kind=row.kind,
            version=row.version,
            title_zh=row.title_zh,
            title_en=row.title_en,
            text_zh=row.text_zh,
            text_en=row.text_en,
            items=[i.as_dict() for i in items_from_json(row.items)],
            content_hash=bytes(row.content_hash).hex(),
            published_at=row.published_at,
        )


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: str = SubjectField
    notice_kind: str = Field(max_length=64)
    notice_version: int = Field(ge=1, le=1_000_000)
    purpose: str = Field(max_length=64)
    action: str = Field(max_length=16)
    channel: str = Field(max_length=16)


class ConsentEventOut(BaseModel):
    id: str
    subject_id: str
    notice_kind: str
    notice_version: int
    notice_hash: str
    purpose: str
    action: str
    separate: bool
    channel: str
    actor: str
    at: datetime

    @classmethod
    def of(cls, row: ConsentEvent) -> ConsentEventOut:
        return cls(
            id=row.id,
            subject_id=row.subject_id,
            notice_kind=row.notice_kind,
            notice_version=row.notice_version,
            notice_hash=bytes(row.notice_hash).hex(),
            purpose=row.purpose,
            action=row.action,
            separate=row.separate,
            channel=row.channel,
            actor=row.actor,
            at=row.at,
        )


class RecordedOut(BaseModel):
    event: ConsentEventOut
    receipt: dict[str, Any]


class CheckOut(BaseModel):
    subject_id: str
    purpose: str
    category: str | None
    status: str
    allowed: bool
    notices: list[dict[str, Any]]

    @classmethod
    def of(cls, answer: ConsentCheck) -> CheckOut:
        return cls(
            subject_id=answer.subject_id,
            purpose=answer.purpose,
            category=answer.category,
            status=answer.status.value,
            allowed=answer.allowed,
            notices=[
                {
                    "kind": a.kind,
                    "version": a.version,
                    "required": a.required,
                    "status": a.status.value,
                    "consented_version": a.consented_version,
                }
                for a in answer.notices
            ],
        )


class ReceiptKeyOut(BaseModel):
    signer: str
    public_key: str  # SM2 x‖y, hex
    public_key_pem: str


class ReceiptVerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receipt: dict[str, Any]
    signature: str = Field(max_length=512)


class ReceiptVerifyOut(BaseModel):
    valid: bool
    receipt: dict[str, Any]
