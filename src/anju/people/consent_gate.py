"""The consent domain's check as the registrar's :data:`~anju.people.registration.ConsentCheck`:
registration (identity verification) needs the person's consent in force under the current
privacy notice, recorded for the subject id allocated when they applied."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from anju.consent.gate import ConsentRequired
from anju.consent.service import ConsentService
from anju.people.registration import ConsentCheck
from anju.platform import Platform
from anju.privacy.inventory import Category, Purpose


def identity_verification_consent(platform: Platform) -> ConsentCheck:
    """A check refusing registration (``consent_required``) without consent in force in the
    registering organisation (notices and consent are per organisation)."""

    async def check(
        session: AsyncSession, org_id: str | None, receipt_id: str | None, subject_id: str
    ) -> None:
        if org_id is None:
            raise ConsentRequired(
                "无机构的账号不能登记 / consent is per organisation: register from an "
                "organisation's account"
            )
        # Asked for the identity number it verifies: a refused *separate* face consent that
        # also names identity verification (for the biometric template) does not block it.
        answer = await ConsentService(platform, session).check(
            org_id, subject_id, Purpose.IDENTITY_VERIFICATION.value, Category.IDENTITY_NUMBER.value
        )
        if not answer.allowed:
            raise ConsentRequired(
                "实名核验需要本人同意现行隐私政策 / identity verification needs the person's "
                "consent to the privacy notice in force",
                details={"status": answer.status.value},
            )

    return check
