"""The wire of the CTID-style network identity service, shared by the client and the fake.

Request ``POST /v1/identity/verify`` (JSON body)::

    {"request_id": hex16, "key": b64(SM2-encrypt(service public key, K)),
     "iv": b64(12 bytes), "payload": b64(SM4-GCM(K, iv, claim JSON, aad=request_id))}

``K`` is a fresh SM4 key per request, so the name and document number are readable only by
the service (not by a proxy or a log on the way). Headers authenticate the caller::

    X-Ctid-App: <app id>
    X-Ctid-Timestamp: <unix seconds>
    X-Ctid-Nonce: <hex16, single use>
    X-Ctid-Signature: hex(HMAC-SM3(app secret, "POST\\n/v1/identity/verify\\n<ts>\\n<nonce>\\n"
                                   + hex(SM3(body))))

Response (JSON body)::

    {"request_id": ..., "result": "match" | "no_match" | "not_found", "reference": <opaque>}

with ``X-Ctid-Signature: b64(SM2 signature of the body by the service key)``. The client
refuses an answer whose signature does not verify or whose request id is not its own.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from anju.kit.crypto import (
    SM4_GCM_NONCE_BYTES,
    SM4_KEY_BYTES,
    SM2PrivateKey,
    SM2PublicKey,
    hmac_sm3,
    random_bytes,
    sm3,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

PATH = "/v1/identity/verify"
SIGNER_ID = b"ctid/identity-service/v1"
MAX_SKEW_SECONDS = 300
RESULTS = ("match", "no_match", "not_found")


@dataclass(frozen=True)
class CtidConfig:
    """Where the service is and the credentials this platform uses with it."""

    base_url: str
    app_id: str
    app_secret: bytes
    service_public_key: SM2PublicKey
    timeout: float = 10.0


def request_mac(secret: bytes, timestamp: str, nonce: str, body: bytes) -> str:
    """The request signature (hex HMAC-SM3)."""
    text = f"POST\n{PATH}\n{timestamp}\n{nonce}\n{sm3(body).hex()}".encode()
    return hmac_sm3(secret, text).hex()


def seal_claim(service_key: SM2PublicKey, claim: dict[str, str]) -> tuple[str, bytes]:
    """(request id, body) carrying ``claim`` encrypted to the service."""
    request_id = random_bytes(16).hex()
    key = random_bytes(SM4_KEY_BYTES)
    iv = random_bytes(SM4_GCM_NONCE_BYTES)
    plain = json.dumps(claim, sort_keys=True, ensure_ascii=False).encode()
    body = {
        "request_id": request_id,
        "key": _b64(service_key.encrypt(key)),
        "iv": _b64(iv),
        "payload": _b64(sm4_gcm_encrypt(key, iv, plain, request_id.encode())),
    }
    return request_id, json.dumps(body).encode()


def open_claim(service_key: SM2PrivateKey, body: dict[str, Any]) -> dict[str, str]:
    """The claim of a request body (service side); IntegrityError if it does not open."""
    key = service_key.decrypt(base64.b64decode(body["key"]))
    plain = sm4_gcm_decrypt(
        key,
        base64.b64decode(body["iv"]),
        base64.b64decode(body["payload"]),
        str(body["request_id"]).encode(),
    )
    claim: dict[str, str] = json.loads(plain)
    return claim


def sign_answer(service_key: SM2PrivateKey, body: bytes) -> str:
    """The response signature header value."""
    return _b64(service_key.sign(body, SIGNER_ID))


def answer_is_authentic(service_key: SM2PublicKey, body: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return False
    return service_key.verify(body, raw, SIGNER_ID)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
