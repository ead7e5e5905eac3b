"""Signed consent receipts the person can download and anyone can verify (L4, L3)."""

from __future__ import annotations

import copy

import pytest

from anju.consent.receipts import verify_receipt
from anju.consent.service import ConsentService
from anju.errors import IntegrityError, InvalidInput
from anju.kit.crypto import SM2PrivateKey, sm3
from anju.platform import Platform
from tests.support.consent import ORG, face_notice, publish, record


async def _receipt(platform: Platform) -> tuple[dict, ConsentService]:  # type: ignore[type-arg]
    await publish(platform, face_notice())
    event = await record(
        platform,
        subject_id="guest-r",
        kind="face_recognition",
        version=1,
        purpose="lock_credential_issue",
        action="given",
        channel="front_desk",
    )
    async with platform.db.transaction() as session:
        service = ConsentService(platform, session)
        return service.receipt(await service.event(ORG, event.id)), service


@pytest.mark.req("L4", "L3")
async def test_a_receipt_names_the_notice_text_and_verifies_with_the_platform_key(
    platform: Platform,
) -> None:
    receipt, service = await _receipt(platform)
    body = verify_receipt(receipt, service.public_key())
    assert body["notice"]["hash"] == sm3(face_notice().canonical()).hex()
    assert (body["notice"]["kind"], body["notice"]["version"]) == ("face_recognition", 1)
    assert (body["purpose"], body["action"], body["channel"]) == (
        "lock_credential_issue",
        "given",
        "front_desk",
    )
    assert body["separate"] is True
    assert body["subject_id"] == "guest-r"
    assert body["actor"] == "account:clerk-1"


@pytest.mark.req("L4", "L3")
async def test_an_altered_or_foreign_receipt_is_refused(platform: Platform) -> None:
    receipt, service = await _receipt(platform)
    altered = copy.deepcopy(receipt)
    altered["receipt"]["action"] = "refused"
    with pytest.raises(IntegrityError):
        verify_receipt(altered, service.public_key())
    other = SM2PrivateKey.generate()
    with pytest.raises(IntegrityError):
        verify_receipt(receipt, other.public_key)
    forged = copy.deepcopy(receipt)
    forged["receipt"]["public_key"] = other.public_key.raw.hex()
    with pytest.raises(IntegrityError):
        verify_receipt(forged, other.public_key)
    with pytest.raises(InvalidInput):
        verify_receipt({"receipt": "x"}, service.public_key())
