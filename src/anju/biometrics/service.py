"""Biometric rules on the platform: 1:1 checks, enrolment, template checks and revocation.

Every call that looks at a face writes one capture log row (L8f: time, operator, device, result)
and one audit entry, in the caller's transaction; refusals are results, not exceptions, so their
log entry is committed too. Images are passed in as bytes, handed to the engine in memory and
dropped: no image, pixel or embedding reaches the database, the audit log or a log line.
Templates are protected (:mod:`anju.face.template`) and then sealed by the PI vault.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import AuditLog
from anju.biometrics.models import FaceCapture, FaceTemplate
from anju.biometrics.repository import BiometricsRepository
from anju.errors import Conflict, InvalidInput, NotFound
from anju.face.engine import FaceEngine, FaceSample, Verification
from anju.face.reasons import FaceRefused, Reason, explain_all
from anju.face.template import (
    HAMMING_THRESHOLD,
    SCHEME,
    ProtectedTemplate,
    derive_template_key,
    hamming_fraction,
    protect,
)
from anju.kit.crypto import random_bytes
from anju.platform import Platform
from anju.privacy.inventory import Purpose
from anju.privacy.models import SUBJECT_ID_LENGTH
from anju.privacy.vault import PIVault

TEMPLATE_FIELD = "biometric.face_template"
TEMPLATE_SECRET = "biometric-template"  # noqa: S105 -- the keyring entry's name, not a secret
MAX_OPERATOR = 128
MAX_DEVICE = 64


class TemplateVersionConflict(Conflict):
    code = "template_version_conflict"


@functools.cache
def shared_engine() -> FaceEngine:
    """One engine per process: the models load once (about 0.2 s and 100 MB)."""
    return FaceEngine()


@dataclass(frozen=True)
class Enrolment:
    """The outcome of enrolling a face template."""

    outcome: str  # "enrolled" | "refused"
    version: int | None
    reasons: list[Reason] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "version": self.version,
            "reasons": explain_all(self.reasons),
        }


@dataclass(frozen=True)
class TemplateCheck:
    """The outcome of comparing a live capture with a subject's stored template."""

    decision: str  # "match" | "no_match" | "refused"
    hamming: float | None
    threshold: float
    version: int | None
    reasons: list[Reason] = field(default_factory=list)
    capture_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "hamming": None if self.hamming is None else round(self.hamming, 4),
            "threshold": self.threshold,
            "version": self.version,
            "reasons": explain_all(self.reasons),
        }


@dataclass(frozen=True)
class Operator:
    """Who uses the face engine, where: recorded in the capture log."""

    actor: str
    device: str
    org_id: str | None = None

    def __post_init__(self) -> None:
        if not 0 < len(self.actor) <= MAX_OPERATOR or not 0 < len(self.device) <= MAX_DEVICE:
            raise InvalidInput(
                "操作人或设备标识无效 / operator (1..128) or device (1..64 characters) invalid"
            )


class BiometricService:
    """Face checks with their capture log, in one session (the caller commits)."""

    def __init__(
        self, platform: Platform, session: AsyncSession, *, engine: FaceEngine | None = None
    ) -> None:
        self._platform = platform
        self._session = session
        self._repo = BiometricsRepository(session)
        self._audit = AuditLog(platform)
        self._vault = PIVault(platform)
        self._engine = engine

    @property
    def engine(self) -> FaceEngine:
        if self._engine is None:
            self._engine = shared_engine()
        return self._engine

    # --- 1:1 person vs document (R9c, R10, N2) ---------------------------------------------
    async def verify_document(
        self, document: bytes, live: bytes, operator: Operator, *, subject_id: str | None = None
    ) -> Verification:
        """Compare an ID document photo with a live capture; nothing of either is kept."""
        check_subject(subject_id)
        result = await asyncio.to_thread(self.engine.verify, document, live)
        reasons = [r for what in ("document", "live") for r in result.reasons.get(what, [])]
        await self.record_capture("document_1to1", result.decision, reasons, operator, subject_id)
        return result

    # --- templates (F3) --------------------------------------------------------------------
    async def enrol(self, subject_id: str, live: bytes, operator: Operator) -> Enrolment:
        """Make the subject's next template version from a live capture (earlier ones revoked)."""
        check_subject(subject_id)
        try:
            sample = await asyncio.to_thread(self.engine.sample, live, what="live")
        except FaceRefused as refused:
            await self.record_capture("enrol", "refused", refused.reasons, operator, subject_id)
            return Enrolment("refused", None, refused.reasons)
        version = await self._store(subject_id, sample, operator)
        await self.record_capture("enrol", "enrolled", [], operator, subject_id)
        return Enrolment("enrolled", version, [])

    async def store_protected(
        self,
        subject_id: str,
        version: int,
        template: ProtectedTemplate,
        operator: Operator,
        *,
        capture_id: str | None = None,
        liveness: str = "not_checked",
    ) -> str:
        """Keep a template a device protected under this subject's key ``version`` (device
        path): sealed like an enrolment made here, the earlier version revoked. The capture id."""
        check_subject(subject_id)
        expected = await self._repo.latest_version(subject_id) + 1
        if version != expected:
            raise TemplateVersionConflict(
                "模板版本必须是下一个版本 / the template version must be the subject's next one",
                details={"expected": expected},
            )
        await self._revoke_active(subject_id)
        await self._insert(subject_id, version, template)
        return await self.record_capture(
            "device_enrol",
            "enrolled",
            [],
            operator,
            subject_id,
            liveness=liveness,
            capture_id=capture_id,
        )

    async def template_in_force(self, subject_id: str, operator: Operator) -> tuple[int, bytes]:
        """The version and protected template of the subject's template in force, opened for
        sending to a lock (purpose ``lock_credential_issue``, audited like every decryption)."""
        row = await self._template_in_force(subject_id)
        return row.version, await self._open(row, Purpose.LOCK_CREDENTIAL_ISSUE, operator)

    async def latest_version(self, subject_id: str) -> int:
        """The highest template version the subject ever had (0 if none)."""
        check_subject(subject_id)
        return await self._repo.latest_version(subject_id)

    async def capture_exists(self, capture_id: str) -> bool:
        return await self._repo.capture(capture_id) is not None

    def template_key(self, subject_id: str, version: int) -> bytes:
        """The projection key of ``version`` (sent only to devices enrolling this subject)."""
        return derive_template_key(self._platform.keys.secret(TEMPLATE_SECRET), subject_id, version)

    async def check_template(
        self, subject_id: str, live: bytes, operator: Operator
    ) -> TemplateCheck:
        """Compare a live capture with the subject's stored template, in the protected domain."""
        check_subject(subject_id)
        row = await self._template_in_force(subject_id)
        try:
            sample = await asyncio.to_thread(self.engine.sample, live, what="live")
        except FaceRefused as refused:
            await self.record_capture(
                "template_1to1", "refused", refused.reasons, operator, subject_id
            )
            return TemplateCheck("refused", None, HAMMING_THRESHOLD, row.version, refused.reasons)
        return await self.match_template(subject_id, sample, operator)

    async def match_template(
        self,
        subject_id: str,
        sample: FaceSample,
        operator: Operator,
        *,
        kind: str = "template_1to1",
        liveness: str = "not_checked",
    ) -> TemplateCheck:
        """Compare an accepted face with the subject's template in force; logged as ``kind``."""
        row = await self._template_in_force(subject_id)
        stored = ProtectedTemplate.from_bytes(
            await self._open(row, Purpose.IDENTITY_VERIFICATION, operator)
        )
        probe = protect(sample.embedding, self.template_key(subject_id, row.version))
        distance = hamming_fraction(stored, probe)
        decision = "match" if distance <= HAMMING_THRESHOLD else "no_match"
        capture_id = await self.record_capture(
            kind, decision, [], operator, subject_id, liveness=liveness
        )
        return TemplateCheck(decision, distance, HAMMING_THRESHOLD, row.version, [], capture_id)

    async def require_template(self, subject_id: str) -> None:
        """``NotFound`` unless the subject has a template in force."""
        check_subject(subject_id)
        await self._template_in_force(subject_id)

    async def _open(self, row: FaceTemplate, purpose: Purpose, operator: Operator) -> bytes:
        """The sealed template of ``row``, opened for ``purpose`` (an audited decryption)."""
        assert row.template is not None
        return await self._vault.open_bytes(
            self._session,
            TEMPLATE_FIELD,
            row.subject_id,
            row.id,
            row.template,
            purpose=purpose,
            actor=operator.actor,
            org_id=operator.org_id,
        )

    async def _template_in_force(self, subject_id: str) -> FaceTemplate:
        row = await self._repo.active_template(subject_id)
        if row is None or row.template is None:
            raise NotFound(f"没有有效的人脸模板 / no face template in force for {subject_id}")
        return row

    async def revoke(self, subject_id: str, operator: Operator) -> int:
        """Revoke the subject's template(s): the sealed bits are deleted. Returns how many."""
        check_subject(subject_id)
        revoked = await self._revoke_active(subject_id)
        await self._audit.record(
            self._session,
            action="biometric.template_revoked",
            actor=operator.actor,
            org_id=operator.org_id,
            target=f"subject:{subject_id}",
            details={"revoked": revoked},
        )
        return revoked

    # --- internals -------------------------------------------------------------------------
    async def _store(self, subject_id: str, sample: FaceSample, operator: Operator) -> int:
        version = await self._repo.latest_version(subject_id) + 1
        template = protect(sample.embedding, self.template_key(subject_id, version))
        await self._revoke_active(subject_id)
        await self._insert(subject_id, version, template)
        return version

    async def _insert(self, subject_id: str, version: int, template: ProtectedTemplate) -> None:
        row_id = random_bytes(16).hex()
        sealed = await self._vault.seal_bytes(
            self._session, TEMPLATE_FIELD, subject_id, row_id, bytes(template)
        )
        await self._repo.add(
            FaceTemplate(
                id=row_id,
                subject_id=subject_id,
                version=version,
                scheme=SCHEME,
                template=sealed,
                created_at=self._platform.clock.now(),
                revoked_at=None,
            )
        )

    async def _revoke_active(self, subject_id: str) -> int:
        revoked = 0
        while (row := await self._repo.active_template(subject_id)) is not None:
            row.template = None
            row.revoked_at = self._platform.clock.now()
            await self._session.flush()
            revoked += 1
        return revoked

    async def record_capture(
        self,
        kind: str,
        outcome: str,
        reasons: Sequence[str],
        operator: Operator,
        subject_id: str | None,
        *,
        liveness: str = "not_checked",
        capture_id: str | None = None,
    ) -> str:
        """One capture log row (L8f) and its ``biometric.<kind>`` audit entry; the row's id
        (``capture_id`` when given: a device's result is logged under an id derived from its
        own, so a resend is recognised)."""
        codes = ",".join(str(r) for r in reasons)[:400]
        capture_id = capture_id or random_bytes(16).hex()
        await self._repo.add(
            FaceCapture(
                id=capture_id,
                at=self._platform.clock.now(),
                operator=operator.actor,
                device=operator.device,
                org_id=operator.org_id,
                kind=kind,
                outcome=outcome,
                reasons=codes,
                liveness=liveness,
                subject_id=subject_id,
            )
        )
        await self._audit.record(
            self._session,
            action=f"biometric.{kind}",
            actor=operator.actor,
            org_id=operator.org_id,
            target=None if subject_id is None else f"subject:{subject_id}",
            outcome="success" if outcome in ("match", "enrolled") else "failure",
            details={
                "device": operator.device,
                "result": outcome,
                "reasons": codes,
                "liveness": liveness,
            },
        )
        return capture_id


def check_subject(subject_id: str | None) -> None:
    if subject_id is not None and not 0 < len(subject_id) <= SUBJECT_ID_LENGTH:
        raise InvalidInput(f"主体标识无效 / subject id must be 1..{SUBJECT_ID_LENGTH} characters")
