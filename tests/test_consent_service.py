"""Notices and consent events: versions, the per-purpose check, append-only events."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from anju.consent.models import ConsentEvent
from anju.consent.rules import ConsentStatus
from anju.consent.service import ConsentService
from anju.errors import AnjuError, InvalidInput
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.consent import ORG, OTHER_ORG, face_notice, privacy_policy, publish, record


async def _check(platform: Platform, subject: str, purpose: str, category: str | None = None):  # type: ignore[no-untyped-def]
    async with platform.db.transaction() as session:
        return await ConsentService(platform, session).check(ORG, subject, purpose, category)


@pytest.mark.req("L4", "L5")
async def test_a_notice_version_has_a_content_hash_and_versions_count_up(
    platform: Platform,
) -> None:
    first = await publish(platform, privacy_policy())
    second = await publish(platform, privacy_policy("新版隐私政策：增加了保存期限说明。"))
    assert (first.version, second.version) == (1, 2)
    assert len(first.content_hash) == 32
    assert first.content_hash == privacy_policy().content_hash()
    assert first.content_hash != second.content_hash
    with pytest.raises(AnjuError) as unchanged:
        await publish(platform, privacy_policy("新版隐私政策：增加了保存期限说明。"))
    assert unchanged.value.code == "notice_unchanged"


@pytest.mark.req("L4")
def test_face_templates_cannot_be_bundled_into_a_general_notice() -> None:
    from anju.consent.notices import build_content

    with pytest.raises(InvalidInput):
        build_content(
            "privacy_policy",
            title_zh="隐私政策",
            title_en="Privacy policy",
            text_zh="正文",
            text_en="text",
            items=[("identity_verification", ["name", "biometric_template"], True)],
        )
    with pytest.raises(InvalidInput):
        build_content(
            "face_recognition",
            title_zh="人脸",
            title_en="Face",
            text_zh="正文",
            text_en="text",
            items=[("guest_contact", ["phone"], False)],
        )


@pytest.mark.req("L4", "F2")
async def test_refusing_an_optional_purpose_disables_only_that_purpose(platform: Platform) -> None:
    await publish(platform, privacy_policy())
    await publish(platform, face_notice())
    await record(
        platform,
        subject_id="guest-1",
        kind="privacy_policy",
        version=1,
        purpose="identity_verification",
        action="given",
    )
    await record(
        platform,
        subject_id="guest-1",
        kind="face_recognition",
        version=1,
        purpose="lock_credential_issue",
        action="refused",
    )
    face = await _check(platform, "guest-1", "lock_credential_issue", "biometric_template")
    identity = await _check(platform, "guest-1", "identity_verification", "identity_number")
    assert (face.status, face.allowed) == (ConsentStatus.REFUSED, False)
    assert (identity.status, identity.allowed) == (ConsentStatus.CONSENTED, True)
    # Identity verification with the face needs the separate face consent: not asked yet.
    by_face = await _check(platform, "guest-1", "identity_verification", "biometric_template")
    assert by_face.status is ConsentStatus.NOT_ASKED
    # Guest contact was never asked; a purpose no notice covers has no basis at all.
    assert (await _check(platform, "guest-1", "guest_contact")).status is ConsentStatus.NOT_ASKED
    assert (await _check(platform, "guest-1", "regulator_report")).status is ConsentStatus.NO_NOTICE


@pytest.mark.req("L4", "L5")
async def test_a_new_notice_version_makes_earlier_consent_stale(platform: Platform) -> None:
    await publish(platform, face_notice())
    event = await record(
        platform,
        subject_id="guest-2",
        kind="face_recognition",
        version=1,
        purpose="lock_credential_issue",
        action="given",
    )
    assert event.separate is True
    assert (await _check(platform, "guest-2", "lock_credential_issue")).allowed
    await publish(platform, face_notice("人脸信息仅用于开锁；新增：可随时在隐私设置中撤回。"))
    stale = await _check(platform, "guest-2", "lock_credential_issue")
    assert stale.status is ConsentStatus.STALE
    assert not stale.allowed
    assert stale.notices[0].consented_version == 1
    assert stale.notices[0].version == 2
    # Consent to the outdated text is refused; consent to the new one restores the purpose.
    with pytest.raises(AnjuError) as outdated:
        await record(
            platform,
            subject_id="guest-2",
            kind="face_recognition",
            version=1,
            purpose="lock_credential_issue",
            action="given",
        )
    assert outdated.value.code == "notice_outdated"
    await record(
        platform,
        subject_id="guest-2",
        kind="face_recognition",
        version=2,
        purpose="lock_credential_issue",
        action="given",
    )
    assert (await _check(platform, "guest-2", "lock_credential_issue")).allowed


@pytest.mark.req("L4", "L8")
async def test_withdrawal_is_a_new_event_and_stops_the_purpose(
    platform: Platform, clock: FixedClock
) -> None:
    await publish(platform, privacy_policy())
    await record(
        platform,
        subject_id="guest-3",
        kind="privacy_policy",
        version=1,
        purpose="guest_contact",
        action="given",
        channel="app",
    )
    clock.advance(minutes=5)
    await record(
        platform,
        subject_id="guest-3",
        kind="privacy_policy",
        version=1,
        purpose="guest_contact",
        action="withdrawn",
        channel="app",
    )
    assert (await _check(platform, "guest-3", "guest_contact")).status is ConsentStatus.WITHDRAWN
    async with platform.db.transaction() as session:
        events = await ConsentService(platform, session).events(ORG, "guest-3")
        count = await session.scalar(select(func.count()).select_from(ConsentEvent))
    assert [e.action for e in events] == ["given", "withdrawn"]
    assert count == 2  # the given event is still there: append-only
    with pytest.raises(AnjuError) as nothing:
        await record(
            platform,
            subject_id="guest-3",
            kind="privacy_policy",
            version=1,
            purpose="guest_contact",
            action="withdrawn",
        )
    assert nothing.value.code == "nothing_to_withdraw"


@pytest.mark.req("L4")
async def test_bad_consent_input_gets_stable_codes_and_writes_nothing(platform: Platform) -> None:
    await publish(platform, privacy_policy())
    cases = [
        (
            {"kind": "privacy_policy", "version": 7, "purpose": "identity_verification"},
            "unknown_notice_version",
        ),
        (
            {"kind": "face_recognition", "version": 1, "purpose": "identity_verification"},
            "unknown_notice_version",
        ),
        (
            {"kind": "privacy_policy", "version": 1, "purpose": "lock_credential_issue"},
            "purpose_not_in_notice",
        ),
        (
            {
                "kind": "privacy_policy'; DROP TABLE consent_events;--",
                "version": 1,
                "purpose": "identity_verification",
            },
            "invalid_input",
        ),
        ({"kind": "privacy_policy", "version": 1, "purpose": "x" * 10_000}, "invalid_input"),
    ]
    for fields, code in cases:
        with pytest.raises(AnjuError) as error:
            await record(platform, subject_id="guest-4", action="given", **fields)
        assert error.value.code == code, fields
    for subject in ("", "a" * 65, "guest 4", "张三", "g'; --"):
        with pytest.raises(AnjuError) as error:
            await record(
                platform,
                subject_id=subject,
                kind="privacy_policy",
                version=1,
                purpose="identity_verification",
                action="given",
            )
        assert error.value.code == "invalid_input"
    async with platform.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(ConsentEvent)) == 0


@pytest.mark.req("L4")
async def test_notices_and_consents_belong_to_one_organisation(platform: Platform) -> None:
    await publish(platform, privacy_policy())
    with pytest.raises(AnjuError) as error:
        await record(
            platform,
            OTHER_ORG,
            subject_id="guest-5",
            kind="privacy_policy",
            version=1,
            purpose="identity_verification",
            action="given",
        )
    assert error.value.code == "unknown_notice_version"
    await record(
        platform,
        subject_id="guest-5",
        kind="privacy_policy",
        version=1,
        purpose="identity_verification",
        action="given",
    )
    async with platform.db.transaction() as session:
        other = await ConsentService(platform, session).check(
            OTHER_ORG, "guest-5", "identity_verification"
        )
        assert await ConsentService(platform, session).events(OTHER_ORG, "guest-5") == []
    assert other.status is ConsentStatus.NO_NOTICE


@pytest.mark.req("L4")
async def test_concurrent_events_of_one_subject_never_share_a_place_in_its_history(
    platform: Platform,
) -> None:
    await publish(platform, privacy_policy())
    fields = {
        "subject_id": "guest-6",
        "kind": "privacy_policy",
        "version": 1,
        "purpose": "identity_verification",
        "action": "given",
        "channel": "kiosk",
    }
    first_done = asyncio.Event()

    async def first() -> None:
        async with platform.db.transaction() as session:
            await ConsentService(platform, session).record(ORG, "account:a", **fields)
            await asyncio.sleep(0.2)  # the second writer starts while this one is open
        first_done.set()

    async def second() -> str:
        await asyncio.sleep(0.05)
        try:
            async with platform.db.transaction() as session:
                await ConsentService(platform, session).record(ORG, "account:b", **fields)
        except AnjuError as error:
            return error.code
        return "recorded"

    _, outcome = await asyncio.gather(first(), second())
    assert first_done.is_set()
    assert outcome in {"recorded", "concurrent_change"}
    async with platform.db.transaction() as session:
        events = await ConsentService(platform, session).events(ORG, "guest-6")
    seqs = [e.seq for e in events]
    assert len(seqs) == len(set(seqs)) == (2 if outcome == "recorded" else 1)


@pytest.mark.req("L4")
async def test_the_privacy_settings_overview_lists_every_purpose_with_its_answer(
    platform: Platform,
) -> None:
    await publish(platform, privacy_policy())
    await publish(platform, face_notice())
    await record(
        platform,
        subject_id="guest-7",
        kind="privacy_policy",
        version=1,
        purpose="guest_contact",
        action="given",
    )
    await record(
        platform,
        subject_id="guest-7",
        kind="face_recognition",
        version=1,
        purpose="lock_credential_issue",
        action="refused",
    )
    async with platform.db.transaction() as session:
        overview = await ConsentService(platform, session).overview(ORG, "guest-7")
    assert {a.purpose: a.status for a in overview} == {
        "guest_contact": ConsentStatus.CONSENTED,
        "identity_verification": ConsentStatus.NOT_ASKED,  # two notices, neither answered
        "lock_credential_issue": ConsentStatus.REFUSED,
    }
    by_purpose = {a.purpose: a for a in overview}
    assert {n.kind for n in by_purpose["identity_verification"].notices} == {
        "privacy_policy",
        "face_recognition",
    }
