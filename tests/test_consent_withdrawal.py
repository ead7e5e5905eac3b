"""Withdrawal stops processing at once: hooks, face templates, consent-bound decryption (L4, L8)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from anju.biometrics.models import FaceTemplate
from anju.biometrics.service import BiometricService, Operator
from anju.consent.gate import ConsentedVault, ConsentRequired
from anju.consent.hooks import (
    Withdrawal,
    end_face_credentials,
    revoke_face_templates,
    standard_hooks,
)
from anju.consent.notices import NoticeKind
from anju.consent.rules import ConsentStatus
from anju.consent.service import ConsentService
from anju.errors import AnjuError
from anju.face.template import ProtectedTemplate
from anju.platform import Platform
from anju.privacy.vault import SealedValue
from anju.retention.service import RetentionService
from tests.support.consent import CLERK, ORG, face_notice, privacy_policy, publish, record

DESK = Operator(CLERK, "kiosk-1", ORG)


async def _enrol_with_consent(platform: Platform, subject: str) -> FaceTemplate:
    await publish(platform, face_notice())
    for purpose in ("identity_verification", "lock_credential_issue"):
        await record(
            platform,
            subject_id=subject,
            kind="face_recognition",
            version=1,
            purpose=purpose,
            action="given",
        )
    async with platform.db.transaction() as session:
        faces = BiometricService(platform, session)
        await faces.store_protected(subject, 1, ProtectedTemplate(bytes(128)), DESK)
        return (
            await session.execute(select(FaceTemplate).where(FaceTemplate.subject_id == subject))
        ).scalar_one()


async def _open(platform: Platform, row: FaceTemplate, purpose: str) -> bytes:
    assert row.template is not None
    async with platform.db.transaction() as session:
        return await ConsentedVault(platform).open_bytes(
            session,
            "biometric.face_template",
            row.subject_id,
            row.id,
            row.template,
            purpose=purpose,
            actor=CLERK,
            org_id=ORG,
        )


@pytest.mark.req("L4", "L8", "F2")
async def test_withdrawing_face_consent_revokes_templates_and_blocks_decryption(
    platform: Platform,
) -> None:
    row = await _enrol_with_consent(platform, "guest-w")
    assert await _open(platform, row, "lock_credential_issue") == bytes(
        ProtectedTemplate(bytes(128))
    )
    await record(
        platform,
        subject_id="guest-w",
        kind="face_recognition",
        version=1,
        purpose="lock_credential_issue",
        action="withdrawn",
        channel="app",
    )
    async with platform.db.transaction() as session:
        stored = await session.get(FaceTemplate, row.id)
        assert stored is not None
        assert stored.template is None
        assert stored.revoked_at is not None
        with pytest.raises(AnjuError) as gone:
            await BiometricService(platform, session).require_template("guest-w")
    assert gone.value.code == "not_found"
    with pytest.raises(ConsentRequired) as refused:
        await _open(platform, row, "lock_credential_issue")
    assert refused.value.details == {"purpose": "lock_credential_issue", "status": "withdrawn"}


@pytest.mark.req("L4", "L11")
async def test_consent_bound_decryption_needs_consent_but_legal_bases_do_not(
    platform: Platform,
) -> None:
    row = await _enrol_with_consent(platform, "guest-v")
    assert await _open(platform, row, "identity_verification")
    await publish(platform, face_notice("新版人脸告知。"))  # consent is now stale
    with pytest.raises(ConsentRequired) as stale:
        await _open(platform, row, "identity_verification")
    assert stale.value.details["status"] == "stale"
    assert stale.value.code == "consent_required"
    async with platform.db.transaction() as session:
        vault = ConsentedVault(platform)
        phone = await vault.seal(session, "person.phone", "guest-v", "p-9", "13800138000")
        # The person's own access request rests on PIPL art. 45, not on consent.
        mine = await vault.open(
            session,
            "person.phone",
            "guest-v",
            "p-9",
            phone,
            purpose="subject_access",
            actor=CLERK,
            org_id=ORG,
        )
        assert mine == "13800138000"
        with pytest.raises(ConsentRequired) as no_notice:
            await vault.open(
                session,
                "person.phone",
                "guest-v",
                "p-9",
                phone,
                purpose="guest_contact",
                actor=CLERK,
                org_id=ORG,
            )
    assert no_notice.value.details["status"] == "no_notice"


@pytest.mark.req("L4")
async def test_hooks_run_in_order_for_their_kind_only(platform: Platform) -> None:
    seen: list[str] = []

    async def access_slot(w: Withdrawal) -> None:
        seen.append(f"{w.kind}:{w.subject_id}:{w.purpose}")

    hooks = standard_hooks()
    hooks.on_withdrawn(NoticeKind.FACE_RECOGNITION, access_slot)
    await publish(platform, privacy_policy())
    await publish(platform, face_notice())
    async with platform.db.transaction() as session:
        service = ConsentService(platform, session, hooks=hooks)
        for kind, purpose in (
            ("privacy_policy", "guest_contact"),
            ("face_recognition", "lock_credential_issue"),
        ):
            for action in ("given", "withdrawn"):
                await service.record(
                    ORG,
                    CLERK,
                    subject_id="guest-h",
                    kind=kind,
                    version=1,
                    purpose=purpose,
                    action=action,
                    channel="kiosk",
                )
    assert seen == ["face_recognition:guest-h:lock_credential_issue"]
    # The platform's own: the locks drop the face (access control), then templates are revoked.
    assert hooks.callbacks(NoticeKind.FACE_RECOGNITION) == [
        end_face_credentials,
        revoke_face_templates,
        access_slot,
    ]


@pytest.mark.req("L4", "L12")
async def test_account_closure_withdraws_everything_and_anchors_retention(
    platform: Platform,
) -> None:
    await _enrol_with_consent(platform, "guest-c")
    async with platform.db.transaction() as session:
        withdrawn = await RetentionService(platform, session).close_account(
            ORG, CLERK, "guest-c", channel="app"
        )
    assert withdrawn == 2
    async with platform.db.transaction() as session:
        consents = ConsentService(platform, session)
        for purpose in ("identity_verification", "lock_credential_issue"):
            answer = await consents.check(ORG, "guest-c", purpose)
            assert answer.status is ConsentStatus.WITHDRAWN
        anchors = await RetentionService(platform, session).anchors("guest-c")
        with pytest.raises(AnjuError) as template:
            await BiometricService(platform, session).require_template("guest-c")
    assert [a.anchor for a in anchors] == ["account_closed"]
    assert template.value.code == "not_found"
    async with platform.db.transaction() as session:
        with pytest.raises(AnjuError) as unknown:
            await RetentionService(platform, session).close_account(
                "org-other", CLERK, "guest-c", channel="app"
            )
    assert unknown.value.code == "not_found"


@pytest.mark.req("L4", "L11", "L6")
async def test_a_batch_opening_checks_consent_like_a_single_one(platform: Platform) -> None:
    async with platform.db.transaction() as session:
        vault = ConsentedVault(platform)
        phone = await vault.seal(session, "person.phone", "guest-m", "p-1", "13800138000")
        name = await vault.seal(session, "person.name", "guest-m", "p-1", "张三")
        # No consent to guest contact: refused, nothing decrypted.
        with pytest.raises(ConsentRequired):
            await vault.open_many(
                session,
                [SealedValue("person.phone", "guest-m", "p-1", phone, ORG)],
                purpose="guest_contact",
                actor=CLERK,
            )
        # Regulator reporting is a legal obligation: no consent needed.
        assert await vault.open_many(
            session,
            [SealedValue("person.name", "guest-m", "p-1", name, ORG)],
            purpose="regulator_report",
            actor=CLERK,
        ) == ["张三"]  # fmt: skip
