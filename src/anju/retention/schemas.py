"""Request and response bodies of the retention API (docs/retention.md)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from anju.retention.models import RetentionAnchorEvent, RetentionRun

SubjectField = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class PolicyOut(BaseModel):
    kind: str
    anchor: str
    days: int
    duration: str
    action: str
    minimum_days: int
    basis_zh: str
    basis_en: str
    swept: bool  # a sweeper is registered for this kind


class AnchorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: str = SubjectField
    anchor: str = Field(max_length=32)
    at: datetime | None = None


class AnchorOut(BaseModel):
    subject_id: str
    anchor: str
    at: datetime

    @classmethod
    def of(cls, row: RetentionAnchorEvent) -> AnchorOut:
        return cls(subject_id=row.subject_id, anchor=row.anchor, at=row.at)


class ClosureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: str = SubjectField
    channel: str = Field(max_length=16)


class ClosureOut(BaseModel):
    subject_id: str
    consents_withdrawn: int


class RunOut(BaseModel):
    id: str
    started_at: datetime
    finished_at: datetime | None = None
    actor: str
    removed: int
    counts: dict[str, Any]

    @classmethod
    def of(cls, row: RetentionRun) -> RunOut:
        return cls(
            id=row.id,
            started_at=row.started_at,
            finished_at=row.finished_at,
            actor=row.actor,
            removed=row.removed,
            counts=json.loads(row.counts),
        )
