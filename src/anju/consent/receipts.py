"""Consent receipts: a canonical JSON body signed with the platform's ``consent`` SM2 key.

The person downloads ``{"receipt": body, "signature": hex}``. Anyone holding the platform's
consent public key (``GET /api/v1/consents/receipt-key``) can check it offline with
:func:`verify_receipt` or ``anju consent verify-receipt``: a receipt proves which notice text
(by SM3 hash) the person agreed to, refused or withdrew, when, how and for which purpose.
"""

from __future__ import annotations

import json
from typing import Any

from anju.errors import IntegrityError, InvalidInput
from anju.kit.crypto import SM2PublicKey

RECEIPT_FORMAT = "anju-consent-receipt/1"
CONSENT_SIGNER = "consent"
MAX_RECEIPT_BYTES = 16 * 1024


def canonical(body: dict[str, Any]) -> bytes:
    """The signed bytes: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify_receipt(receipt: dict[str, Any], trusted: SM2PublicKey) -> dict[str, Any]:
    """The receipt's body if ``trusted`` signed it; ``IntegrityError`` otherwise."""
    body = receipt.get("receipt")
    signature = receipt.get("signature")
    if not isinstance(body, dict) or not isinstance(signature, str):
        raise InvalidInput("不是同意回执 / not a consent receipt (receipt, signature)")
    if body.get("format") != RECEIPT_FORMAT:
        raise InvalidInput(f"回执格式未知 / unknown receipt format {str(body.get('format'))[:40]}")
    if body.get("public_key") != trusted.raw.hex():
        raise IntegrityError(
            "回执不是由该公钥签发 / the receipt names another signing key than the trusted one"
        )
    try:
        raw_signature = bytes.fromhex(signature)
    except ValueError:
        raise IntegrityError("签名格式错误 / the signature is not hex") from None
    if not trusted.verify(canonical(body), raw_signature):
        raise IntegrityError("回执签名无效 / the receipt's signature does not verify: altered")
    return body


def load_receipt(raw: bytes) -> dict[str, Any]:
    """Parse a receipt file (size-bounded JSON object)."""
    if len(raw) > MAX_RECEIPT_BYTES:
        raise InvalidInput(f"回执过大 / a receipt is at most {MAX_RECEIPT_BYTES} bytes")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("回执不是 JSON / the receipt is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput("不是同意回执 / not a consent receipt")
    return value
