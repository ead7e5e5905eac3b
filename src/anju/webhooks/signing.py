"""The signature of a webhook request and its check by a receiver (docs/webhooks.md).

``Anju-Webhook-Signature: v1=<hex HMAC-SM3(secret, "<timestamp>.<body>")>`` where ``secret`` is
the endpoint's secret as UTF-8 bytes, ``timestamp`` the decimal unix seconds of
``Anju-Webhook-Timestamp`` and ``body`` the exact request body bytes. Receivers reject a
timestamp outside a tolerance (5 minutes) and an event id (``Anju-Webhook-Id``) seen before.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from anju.kit.crypto import hmac_sm3

ID_HEADER = "Anju-Webhook-Id"
TIMESTAMP_HEADER = "Anju-Webhook-Timestamp"
SIGNATURE_HEADER = "Anju-Webhook-Signature"
EVENT_HEADER = "Anju-Webhook-Event"
VERSION = "v1"
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Anju-Webhook-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac_sm3(secret.encode(), str(timestamp).encode() + b"." + body)
    return f"{VERSION}={mac.hex()}"


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_s: int,
    tolerance_s: int = TOLERANCE_SECONDS,
) -> bool:
    """A receiver's check: the signature matches and the timestamp is recent (then it must
    still refuse an ``Anju-Webhook-Id`` it has already processed)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not stamp.isdigit() or abs(now_s - int(stamp)) > tolerance_s:
        return False
    expected = signature(secret, int(stamp), body)
    return any(hmac.compare_digest(expected, part.strip()) for part in given.split(","))
