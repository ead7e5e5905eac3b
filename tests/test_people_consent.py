"""Registration with the consent domain's check (N3: apply → agree to the privacy notice →
enter data → verify): consent is recorded under the subject id allocated at application, and
registration without it — or after withdrawal — is ``consent_required`` with nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from anju.consent.gate import ConsentRequired
from anju.people.consent_gate import identity_verification_consent
from anju.people.models import IdentityVerification, Person
from anju.people.registration import Registrar
from anju.people.service import Actor, new_subject_id
from anju.people.verification.base import StaffCheck
from anju.platform import Platform
from tests.support.consent import ORG, face_notice, privacy_policy, publish, record
from tests.support.people import people

DESK = Actor("account:desk-1", ORG)
STAFF = StaffCheck(original_document_checked=True)


async def register(platform: Platform, subject_id: str, receipt: str | None = None):  # type: ignore[no-untyped-def]
    async with platform.db.transaction() as session:
        registrar = Registrar(
            platform, session, consent_check=identity_verification_consent(platform)
        )
        return await registrar.register(
            DESK, people(1)[0], STAFF, consent_receipt_id=receipt, subject_id=subject_id
        )


async def stored(platform: Platform) -> tuple[int, int]:
    async with platform.db.transaction() as session:
        persons = (await session.execute(select(func.count()).select_from(Person))).scalar_one()
        kept = (
            await session.execute(select(func.count()).select_from(IdentityVerification))
        ).scalar_one()
    return int(persons), int(kept)


@pytest.mark.req("N3", "L4", "L5")
async def test_registration_needs_consent_to_the_notice_in_force(platform: Platform) -> None:
    notice = await publish(platform, privacy_policy())
    subject = new_subject_id()  # allocated when the person applied
    with pytest.raises(ConsentRequired):
        await register(platform, subject)
    assert await stored(platform) == (0, 0)

    event = await record(
        platform, subject_id=subject, kind="privacy_policy", version=notice.version,
        purpose="identity_verification", action="given",
    )  # fmt: skip
    result = await register(platform, subject, receipt=str(event.id))
    assert result.outcome == "registered"
    assert result.subject_id == subject
    assert await stored(platform) == (1, 1)

    later = new_subject_id()
    await record(
        platform, subject_id=later, kind="privacy_policy", version=notice.version,
        purpose="identity_verification", action="given",
    )  # fmt: skip
    await publish(platform, privacy_policy("新版隐私政策。"))  # earlier consent is now stale
    with pytest.raises(ConsentRequired):
        await register(platform, later)
    assert await stored(platform) == (1, 1)


@pytest.mark.req("N3", "L4", "F2")
async def test_refusing_the_separate_face_consent_does_not_block_registration(
    platform: Platform,
) -> None:
    policy = await publish(platform, privacy_policy())
    face = await publish(platform, face_notice())  # names identity_verification for templates
    subject = new_subject_id()
    await record(
        platform, subject_id=subject, kind="privacy_policy", version=policy.version,
        purpose="identity_verification", action="given",
    )  # fmt: skip
    await record(
        platform, subject_id=subject, kind="face_recognition", version=face.version,
        purpose="identity_verification", action="refused",
    )  # fmt: skip
    result = await register(platform, subject)
    assert result.outcome == "registered"
    assert await stored(platform) == (1, 1)
