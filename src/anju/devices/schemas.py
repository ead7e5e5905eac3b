"""Request and response bodies of the device API (pydantic). Every input has a size limit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Hex32 = Annotated[str, StringConstraints(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")]
Hex64 = Annotated[str, StringConstraints(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")]
Hex128 = Annotated[
    str, StringConstraints(min_length=128, max_length=128, pattern=r"^[0-9a-f]{128}$")
]
ProductKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9-]{1,64}$")
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=32)]
AttributeText = Annotated[str, StringConstraints(max_length=200)]
AttributeKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PlaceIn(_In):
    kind: ShortText
    ref: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class RegisterIn(_In):
    claim_code: ShortText
    place: PlaceIn | None = None


class PlaceChangeIn(_In):
    place: PlaceIn | None  # null unbinds


class ReasonIn(_In):
    reason: ShortText | None = None


class AttributesIn(_In):
    # A null value removes the key.
    attributes: Annotated[
        dict[AttributeKey, AttributeText | int | float | bool | None], Field(max_length=64)
    ]


class DynamicRegisterIn(_In):
    product_key: ProductKey
    device_id: Hex32
    se_id: Hex32
    public_key: Hex128  # SM2 x‖y
    timestamp: Annotated[int, Field(ge=0, lt=1 << 63)]  # unix seconds
    nonce: Hex32  # 16 random bytes
    mac: Hex64  # HMAC-SM3(product secret, device id ‖ SE id ‖ public key ‖ u64 ts ‖ nonce)


class PlaceOut(BaseModel):
    kind: str
    ref: str


class DeviceOut(BaseModel):
    id: str
    type: str
    product_key: str
    status: str
    org_id: str | None
    place: PlaceOut | None
    firmware_version: str | None
    online: bool
    battery_pct: int | None
    signal_dbm: int | None
    last_seen_at: datetime | None
    attributes: dict[str, Any]
    reported: dict[str, Any]
    cert_serial: str
    cert_not_after: datetime
    registered_at: datetime | None
    created_at: datetime
    updated_at: datetime


class OperationOut(BaseModel):
    at: datetime
    actor: str
    operation: str
    outcome: str
    details: dict[str, Any]


class Topics(BaseModel):
    publish: str
    subscribe: str


class DynamicRegisterOut(BaseModel):
    device_id: str
    certificate: str  # hex of the binary certificate
    root_key_ciphertext: str  # hex, SM2 (C1C3C2 DER) to the device's public key
    ca_public_key_pem: str
    topics: Topics


class CaOut(BaseModel):
    ca_public_key_pem: str
    issuer_key_id: str  # hex SM3(SPKI DER)[:8], as in certificates
    gateway_subject: str
