"""Purpose-bound decryption with the consent check where the law needs consent (L4, L11).

The vault already refuses a purpose the field's inventory entry does not allow and audits every
decryption with its purpose. :class:`ConsentedVault` adds the legal-basis question: purposes
whose basis is the person's consent are opened only while the consent check answers
``consented``; purposes with another legal basis (PIPL art. 13) pass without it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from anju.consent.service import ConsentService
from anju.errors import Forbidden
from anju.privacy.column import Sealed
from anju.privacy.inventory import PIField, Purpose
from anju.privacy.vault import PIVault, SealedValue

#: Purposes that rest on a legal basis other than consent (PIPL art. 13), with that basis.
NON_CONSENT_BASES: dict[Purpose, tuple[str, str]] = {
    Purpose.REGULATOR_REPORT: (
        "履行法定义务（治安管理实名登记报送；须告知，L6）",
        "legal obligation (real-name reporting to public security; notice required, L6)",
    ),
    Purpose.LAWFUL_REQUEST: ("依法调取（法定职责）", "lawful request by an authority"),
    Purpose.SUBJECT_ACCESS: ("本人行使查阅权", "the person's own access request (PIPL art. 45)"),
    Purpose.SERVICE_REQUEST: (
        "履行合同（处理本人提出的报修与反馈）",
        "performing the contract: the person's own repair request or feedback (PIPL art. 13)",
    ),
}


def needs_consent(purpose: str) -> bool:
    """Whether decrypting for ``purpose`` needs the person's consent."""
    return purpose not in {p.value for p in NON_CONSENT_BASES}


class ConsentRequired(Forbidden):
    code = "consent_required"


class ConsentedVault(PIVault):
    """A :class:`PIVault` that opens consent-based purposes only with consent in force."""

    async def open_bytes(
        self,
        session: AsyncSession,
        field: PIField | str,
        subject_id: str,
        row_id: str,
        sealed: Sealed,
        *,
        purpose: str,
        actor: str,
        org_id: str | None = None,
    ) -> bytes:
        entry = self.field(field)
        await self._require_consent(session, entry, subject_id, purpose, org_id)
        return await super().open_bytes(
            session,
            entry,
            subject_id,
            row_id,
            sealed,
            purpose=purpose,
            actor=actor,
            org_id=org_id,
        )

    async def open_many(
        self,
        session: AsyncSession,
        values: Sequence[SealedValue],
        *,
        purpose: str,
        actor: str,
    ) -> list[str]:
        for value in values:
            entry = self.field(value.field)
            await self._require_consent(session, entry, value.subject_id, purpose, value.org_id)
        return await super().open_many(session, values, purpose=purpose, actor=actor)

    async def _require_consent(
        self,
        session: AsyncSession,
        entry: PIField,
        subject_id: str,
        purpose: str,
        org_id: str | None,
    ) -> None:
        """Refuse a consent-based purpose unless the person's consent is in force."""
        if not needs_consent(purpose):
            return
        if org_id is None:
            raise ConsentRequired(
                "需要机构上下文以核对同意 / an organisation is needed to check consent",
                details={"purpose": purpose, "status": "unknown"},
            )
        answer = await ConsentService(self._platform, session).check(
            org_id, subject_id, purpose, entry.category.value
        )
        if not answer.allowed:
            raise ConsentRequired(
                f"未取得有效同意 / no consent in force for {purpose}",
                details={"purpose": purpose, "status": answer.status.value},
            )
