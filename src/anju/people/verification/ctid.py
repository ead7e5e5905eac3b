"""``CtidProvider``: the network identity adapter (CTID-style) over signed HTTP (see
:mod:`ctid_wire` for the wire)."""

from __future__ import annotations

import json

import httpx

from anju.kit.clock import Clock
from anju.kit.crypto import random_bytes
from anju.people.verification.base import (
    IdentityClaim,
    ProviderAnswerInvalid,
    ProviderResult,
    ProviderUnavailable,
)
from anju.people.verification.ctid_wire import (
    PATH,
    RESULTS,
    CtidConfig,
    answer_is_authentic,
    request_mac,
    seal_claim,
)


class CtidProvider:
    """Asks the network identity service whether a name and document number belong together."""

    name = "ctid"

    def __init__(
        self, config: CtidConfig, clock: Clock, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        self._clock = clock
        self._transport = transport

    async def verify(self, claim: IdentityClaim) -> ProviderResult:
        """One signed round trip; ``verified`` only for a signed ``match``."""
        request_id, body = seal_claim(
            self._config.service_public_key,
            {
                "name": claim.name,
                "document_type": claim.document_type,
                "document_number": claim.document_number,
            },
        )
        timestamp = str(int(self._clock.now().timestamp()))
        nonce = random_bytes(16).hex()
        headers = {
            "content-type": "application/json",
            "x-ctid-app": self._config.app_id,
            "x-ctid-timestamp": timestamp,
            "x-ctid-nonce": nonce,
            "x-ctid-signature": request_mac(self._config.app_secret, timestamp, nonce, body),
        }
        try:
            async with httpx.AsyncClient(
                base_url=self._config.base_url,
                timeout=self._config.timeout,
                transport=self._transport,
            ) as client:
                response = await client.post(PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"身份核验服务不可用 / identity service unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code != 200:
            raise ProviderUnavailable(
                f"身份核验服务返回错误 / identity service answered HTTP {response.status_code}"
            )
        signature = response.headers.get("x-ctid-signature", "")
        if not answer_is_authentic(self._config.service_public_key, response.content, signature):
            raise ProviderAnswerInvalid(
                "身份核验服务的应答签名无效 / the identity service's answer is not signed by it"
            )
        try:
            answer = json.loads(response.content)
            result, reference = str(answer["result"]), str(answer["reference"])[:64]
            echoed = answer["request_id"]
        except (ValueError, KeyError, TypeError):
            raise ProviderAnswerInvalid("身份核验应答格式错误 / malformed answer") from None
        if echoed != request_id or result not in RESULTS:
            raise ProviderAnswerInvalid(
                "身份核验应答与请求不符 / the answer does not belong to this request"
            )
        outcome = "verified" if result == "match" else "rejected"
        return ProviderResult(outcome, self.name, reference, "" if result == "match" else result)
