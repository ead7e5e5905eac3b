"""Request and response bodies of the biometrics API (docs/biometrics.md, docs/api.md).

Images travel as standard base64 inside JSON, never as multipart: Starlette spools multipart
uploads over 1 MiB to a temporary *file*, and a face image must never touch the disk. A body is
read into memory within the path's size limit (:data:`anju.biometrics.remote.MAX_BODY_BYTES`).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from anju.biometrics.remote import CheckPurpose, RemoteCapture
from anju.devices.command_models import DeviceCommand
from anju.privacy.models import SUBJECT_ID_LENGTH

#: Frames a request may carry at all (the liveness policy refuses more than 90 with a reason).
MAX_WIRE_FRAMES = 256
MAX_TIME_MS = (1 << 53) - 1


def _base64(value: Any) -> bytes:
    """Standard base64 with padding, strictly (no whitespace, no other alphabet)."""
    if not isinstance(value, str):
        raise ValueError("expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not standard base64") from None


Base64Image = Annotated[
    bytes,
    BeforeValidator(_base64),
    Field(min_length=1),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]
SubjectId = Annotated[str, Field(min_length=1, max_length=SUBJECT_ID_LENGTH)]
DeviceLabel = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
ChallengeId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class ChallengeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: CheckPurpose
    subject_id: SubjectId | None = None


class ChallengeOut(BaseModel):
    id: str
    purpose: CheckPurpose
    subject_id: str | None
    actions: list[str]
    prompts: list[str]
    issued_at_ms: int
    expires_at_ms: int


class FrameIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at_ms: int = Field(ge=0, le=MAX_TIME_MS, description="capture time on the client's clock")
    image: Base64Image


class _CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_id: ChallengeId
    device: DeviceLabel = Field(
        default="remote", description="the capturing client as it names itself (capture log)"
    )
    frames: list[FrameIn] = Field(min_length=1, max_length=MAX_WIRE_FRAMES)

    def frame_pairs(self) -> list[tuple[int, bytes]]:
        return [(f.at_ms, f.image) for f in self.frames]


class DocumentCheckIn(_CheckIn):
    subject_id: SubjectId | None = None
    document: Base64Image

    def capture(self) -> RemoteCapture:
        return RemoteCapture(self.frame_pairs(), self.document)


class TemplateCheckIn(_CheckIn):
    subject_id: SubjectId

    def capture(self) -> RemoteCapture:
        return RemoteCapture(self.frame_pairs())


class ReasonOut(BaseModel):
    code: str
    message: str


class LivenessOut(BaseModel):
    live: bool
    performed: list[str]
    reasons: list[ReasonOut]


class CheckOut(BaseModel):
    capture_id: str
    purpose: CheckPurpose
    decision: str = Field(description="match, no_match or refused")
    metric: str = Field(description="embedding_distance (document) or template_hamming")
    distance: float | None = Field(description="lower is more alike; null when refused")
    threshold: float
    liveness: LivenessOut | None
    reasons: dict[str, list[ReasonOut]] = Field(
        description="refusal reasons by input: challenge, liveness, document"
    )


class SubjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: SubjectId


class OfferOut(BaseModel):
    """A biometric command queued for a device (store-and-forward, docs/devices.md)."""

    command_id: str
    device_id: str
    name: str
    subject_id: str
    version: int | None = Field(description="the template version (null for bio.drop)")
    expires_at: datetime


def offer_out(command: DeviceCommand, subject_id: str, version: int | None) -> OfferOut:
    return OfferOut(
        command_id=command.id,
        device_id=command.device_id,
        name=command.name,
        subject_id=subject_id,
        version=version,
        expires_at=command.expires_at,
    )
