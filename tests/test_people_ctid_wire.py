"""The CTID-style wire: the service authenticates the caller (HMAC-SM3, timestamp, single-use
nonce) and reads the claim only with its own key; the claim is never on the wire in clear."""

from __future__ import annotations

import json
import time

import pytest

from anju.people.verification.ctid_wire import open_claim, request_mac, seal_claim
from anju.people.verification.fake_ctid import FakeCtidService

pytestmark = pytest.mark.req("N2", "L3")
PATH = "/v1/identity/verify"
CLAIM = {
    "name": "欧阳娜娜",
    "document_type": "resident_id",
    "document_number": "11010519491231002X",
}


def signed(service: FakeCtidService, body: bytes, nonce: str, ts: int | None = None) -> dict:  # type: ignore[type-arg]
    stamp = str(int(time.time()) if ts is None else ts)
    return {
        "x-ctid-app": service.app_id,
        "x-ctid-timestamp": stamp,
        "x-ctid-nonce": nonce,
        "x-ctid-signature": request_mac(service.app_secret, stamp, nonce, body),
    }


def test_claim_is_encrypted_to_the_service_and_answered_once_per_nonce() -> None:
    service = FakeCtidService()
    service.add_identity("resident_id", CLAIM["document_number"], CLAIM["name"])
    request_id, body = seal_claim(service.key.public_key, CLAIM)
    for value in CLAIM.values():
        assert value.encode() not in body
        assert json.dumps(value).encode() not in body
    assert open_claim(service.key, json.loads(body)) == CLAIM

    status, answer = service.answer(PATH, signed(service, body, "n-1"), body)
    assert (status, answer["result"], answer["request_id"]) == (200, "match", request_id)
    status, answer = service.answer(PATH, signed(service, body, "n-1"), body)
    assert (status, answer) == (401, {"error": "replayed_nonce"})


def test_unsigned_stale_or_tampered_requests_are_refused() -> None:
    service = FakeCtidService()
    _, body = seal_claim(service.key.public_key, CLAIM)
    headers = signed(service, body, "n-2")
    assert service.answer(PATH, headers, body + b" ")[0] == 401  # body changed after signing
    assert service.answer(PATH, {**headers, "x-ctid-app": "other"}, body)[0] == 401
    stale = signed(service, body, "n-3", ts=int(time.time()) - 3600)
    assert service.answer(PATH, stale, body) == (401, {"error": "stale_request"})
    other = FakeCtidService()
    _, for_other = seal_claim(other.key.public_key, CLAIM)  # encrypted to another service
    assert service.answer(PATH, signed(service, for_other, "n-4"), for_other)[0] == 400
    assert service.requests == 1  # only the last one got as far as decryption
