"""The registration flow: apply → (consent) → enter data → verify with a provider → 1:1 face
check where the evidence is an ID-card reader → signed result kept → person stored sealed.

Consent: notices and consent are the consent domain's (``anju.consent``). The caller passes
the id of the person's consent receipt (``consent_receipt_id``) and, once that domain is
wired in, a :data:`ConsentCheck` that refuses a missing or stale receipt; the receipt id is
part of the signed statement either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import AuditLog
from anju.audit.encoding import time_text
from anju.biometrics.repository import BiometricsRepository
from anju.biometrics.service import BiometricService, Operator
from anju.errors import InvalidInput
from anju.kit.crypto import random_bytes
from anju.people.application import Application, CleanApplication, clean_application
from anju.people.models import IdentityVerification, Person
from anju.people.repository import PeopleRepository, org_scope
from anju.people.service import (
    Actor,
    DuplicatePerson,
    PeopleService,
    check_subject_id,
    new_subject_id,
)
from anju.people.verification.base import (
    Evidence,
    FaceCheckUnusable,
    IdCardCheck,
    IdentityClaim,
    NetworkCheck,
    OriginalNotChecked,
    ProviderResult,
    RemoteFaceCheck,
    StaffCheck,
)
from anju.people.verification.statement import sign_statement
from anju.platform import Platform

#: ``(session, org_id, consent_receipt_id, subject_id)``: raise when the person's consent does
#: not allow registration (:func:`anju.people.consent_gate.identity_verification_consent`).
ConsentCheck = Callable[[AsyncSession, str | None, str | None, str], Awaitable[None]]
MAX_RECEIPT_ID = 64
REMOTE_CHECK_KIND = "remote_document_check"
REMOTE_CHECK_MAX_AGE = timedelta(minutes=10)


@dataclass(frozen=True)
class Registration:
    """What came of a registration: ``registered`` (a person) or ``rejected`` (no person)."""

    outcome: str
    subject_id: str
    verification_id: str
    person_id: str | None
    reason: str = ""
    face_decision: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "subject_id": self.subject_id,
            "verification_id": self.verification_id,
            "person_id": self.person_id,
            "reason": self.reason,
            "face_decision": self.face_decision,
        }


class Registrar:
    """Registers people in one session (the caller commits)."""

    def __init__(
        self,
        platform: Platform,
        session: AsyncSession,
        *,
        consent_check: ConsentCheck | None = None,
        face: BiometricService | None = None,
    ) -> None:
        self._platform = platform
        self._session = session
        self._people = PeopleService(platform, session)
        self._repo = PeopleRepository(session)
        self._audit = AuditLog(platform)
        self._consent_check = consent_check
        self._face = face

    async def register(
        self,
        actor: Actor,
        application: Application,
        evidence: Evidence,
        *,
        consent_receipt_id: str | None = None,
        subject_id: str | None = None,
    ) -> Registration:
        """Validate, verify, refuse a duplicate, sign and keep the result, store the person.

        ``subject_id``: the pseudonym allocated when the person applied (their consent is
        recorded under it before registration); a new one when not given."""
        if consent_receipt_id is not None and not 0 < len(consent_receipt_id) <= MAX_RECEIPT_ID:
            raise InvalidInput("同意回执标识无效 / consent receipt id must be 1..64 characters")
        clean = clean_application(application, self._platform.clock.now().date())
        if isinstance(evidence, StaffCheck) and not evidence.original_document_checked:
            raise OriginalNotChecked(
                "线下登记须由工作人员核对证件原件 / offline registration needs staff to check "
                "the original document"
            )
        subject_id = new_subject_id() if subject_id is None else check_subject_id(subject_id)
        if self._consent_check is not None:
            await self._consent_check(self._session, actor.org_id, consent_receipt_id, subject_id)
        # Verify first: the provider's round trip and the face engine's work then run before
        # this transaction takes any lock (SQLite's BEGIN IMMEDIATE is a database-wide one).
        result, face_decision = await self._verify(actor, clean, evidence, subject_id)
        document_index = self._people.document_index(clean.document_type, clean.document_number)
        await self._refuse_duplicate(actor.org_id, document_index)
        person_id = random_bytes(16).hex() if result.verified else None
        verification_id = await self._keep_result(
            actor, evidence.method, result, subject_id, person_id, clean, consent_receipt_id,
            face_decision,
            evidence.capture_id if isinstance(evidence, RemoteFaceCheck) else None,
        )  # fmt: skip
        if person_id is None:
            await self._audit.record(
                self._session,
                action="people.verification_rejected",
                actor=actor.actor,
                org_id=actor.org_id,
                target=f"subject:{subject_id}",
                outcome="failure",
                details={"method": evidence.method, "reason": result.reason,
                         "verification_id": verification_id},
            )  # fmt: skip
            return Registration(
                "rejected", subject_id, verification_id, None, result.reason, face_decision
            )
        await self._store(actor, clean, subject_id, person_id, document_index)
        await self._audit.record(
            self._session,
            action="people.registered",
            actor=actor.actor,
            org_id=actor.org_id,
            target=f"subject:{subject_id}",
            details={
                "person_id": person_id,
                "kind": clean.kind,
                "document_type": clean.document_type.value,
                "method": evidence.method,
                "verification_id": verification_id,
            },
        )
        return Registration("registered", subject_id, verification_id, person_id, "", face_decision)

    async def _refuse_duplicate(self, org_id: str | None, document_index: bytes) -> None:
        existing = await self._repo.by_document(org_id, document_index)
        if existing is not None:
            raise DuplicatePerson(
                "此证件已登记 / a person with this document is already registered",
                details={"person_id": existing.id},
            )

    async def _verify(
        self, actor: Actor, clean: CleanApplication, evidence: Evidence, subject_id: str
    ) -> tuple[ProviderResult, str | None]:
        if isinstance(evidence, NetworkCheck):
            claim = IdentityClaim(clean.document_type.value, clean.document_number, clean.name)
            return await evidence.provider.verify(claim), None
        if isinstance(evidence, IdCardCheck):
            face = self._face or BiometricService(self._platform, self._session)
            operator = Operator(actor.actor, evidence.device, actor.org_id)
            check = await face.verify_document(
                evidence.photo, evidence.live, operator, subject_id=subject_id
            )
            outcome = "verified" if check.matched else "rejected"
            reason = "" if check.matched else f"face_{check.decision}"
            return ProviderResult(outcome, "id_card_reader", f"face:{check.decision}", reason), (
                check.decision
            )
        if isinstance(evidence, RemoteFaceCheck):
            decision = await self._remote_face_decision(actor, evidence.capture_id)
            outcome = "verified" if decision == "match" else "rejected"
            reason = "" if decision == "match" else f"face_{decision}"
            reference = f"capture:{evidence.capture_id}"
            return ProviderResult(outcome, "remote_face_check", reference, reason), decision
        return ProviderResult("verified", "staff", "original_document_checked"), None

    async def _remote_face_decision(self, actor: Actor, capture_id: str) -> str:
        """The decision of a usable remote document check (else ``face_check_unusable``)."""
        capture = await BiometricsRepository(self._session).capture(capture_id)
        now = self._platform.clock.now()
        if (
            capture is None
            or capture.kind != REMOTE_CHECK_KIND
            or capture.operator != actor.actor
            or capture.liveness != "passed"
            or capture.outcome not in ("match", "no_match")
            or not now - REMOTE_CHECK_MAX_AGE <= capture.at <= now
            or await self._repo.verification_using_capture(capture_id) is not None
        ):
            raise FaceCheckUnusable(
                "人脸核验记录不可用（不存在、已过期、未通过活体检测或已使用）/ the face check is "
                "unknown, expired, without a passed liveness check, or already used"
            )
        return capture.outcome

    async def _keep_result(
        self,
        actor: Actor,
        method: str,
        result: ProviderResult,
        subject_id: str,
        person_id: str | None,
        clean: CleanApplication,
        consent_receipt_id: str | None,
        face_decision: str | None,
        face_capture_id: str | None,
    ) -> str:
        """The signed verification statement, stored; its id."""
        verification_id = random_bytes(16).hex()
        at = self._platform.clock.now()
        statement = {
            "v": 1,
            "verification_id": verification_id,
            "person_id": person_id,
            "subject_id": subject_id,
            "org_id": actor.org_id,
            "kind": clean.kind,
            "document_type": clean.document_type.value,
            "method": method,
            "provider": result.provider,
            "provider_reference": result.reference,
            "outcome": result.outcome,
            "reason": result.reason,
            "face": face_decision,
            "checked_by": actor.actor,
            "consent_receipt_id": consent_receipt_id,
            "face_capture_id": face_capture_id,
            "at": time_text(at),
        }
        text, signature = sign_statement(self._platform.keys, statement)
        row = IdentityVerification(
            id=verification_id,
            person_id=person_id,
            subject_id=subject_id,
            org_id=actor.org_id,
            method=method,
            outcome=result.outcome,
            checked_by=actor.actor,
            consent_receipt_id=consent_receipt_id,
            face_capture_id=face_capture_id,
            at=at,
            statement=text,
            signature=signature,
        )
        try:
            async with self._session.begin_nested():
                await self._repo.add(row)
        except DbIntegrityError:
            raise FaceCheckUnusable(  # a concurrent registration used the same face check
                "人脸核验记录已被使用 / the face check was already used"
            ) from None
        return verification_id

    async def _store(
        self,
        actor: Actor,
        clean: CleanApplication,
        subject_id: str,
        person_id: str,
        document_index: bytes,
    ) -> None:
        now = self._platform.clock.now()
        person = Person(
            id=person_id,
            org_id=actor.org_id,
            org_scope=org_scope(actor.org_id),
            subject_id=subject_id,
            kind=clean.kind,
            document_type=clean.document_type.value,
            document_index=document_index,
            masked="{}",
            status="active",
            registered_by=actor.actor,
            created_at=now,
            updated_at=now,
        )
        await self._people.seal_into(person, clean.values)
        try:
            async with self._session.begin_nested():
                await self._repo.add(person)
        except DbIntegrityError:
            # A concurrent registration of the same document won the race.
            existing = await self._repo.by_document(actor.org_id, document_index)
            raise DuplicatePerson(
                "此证件已登记 / a person with this document is already registered",
                details={"person_id": existing.id if existing else None},
            ) from None
