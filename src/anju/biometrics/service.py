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
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import AuditLog
from anju.biometrics.models import FaceCapture, FaceTemplate
from anju.biometrics.repository import BiometricsRepository
from anju.errors import InvalidInput, NotFound
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
        _check_subject(subject_id)
        result = await asyncio.to_thread(self.engine.verify, document, live)
        reasons = [r for what in ("document", "live") for r in result.reasons.get(what, [])]
        await self._log("document_1to1", result.decision, reasons, operator, subject_id)
        return result

    # --- templates (F3) --------------------------------------------------------------------
    async def enrol(self, subject_id: str, live: bytes, operator: Operator) -> Enrolment:
        """Make the subject's next template version from a live capture (earlier ones revoked)."""
        _check_subject(subject_id)
        try:
            sample = await asyncio.to_thread(self.engine.sample, live, what="live")
        except FaceRefused as refused:
            await self._log("enrol", "refused", refused.reasons, operator, subject_id)
            return Enrolment("refused", None, refused.reasons)
        version = await self._store(subject_id, sample, operator)
        await self._log("enrol", "enrolled", [], operator, subject_id)
        return Enrolment("enrolled", version, [])

    async def store_protected(
        self, subject_id: str, version: int, template: ProtectedTemplate, operator: Operator
    ) -> None:
        """Keep a template a device protected under this subject's key ``version`` (device path)."""
        _check_subject(subject_id)
        if version != await self._repo.latest_version(subject_id) + 1:
            raise InvalidInput(
                "模板版本必须是下一个版本 / the template version must be the subject's next one",
                details={"expected": await self._repo.latest_version(subject_id) + 1},
            )
        await self._revoke_active(subject_id)
        await self._insert(subject_id, version, template)
        await self._log("device_enrol", "enrolled", [], operator, subject_id)

    def template_key(self, subject_id: str, version: int) -> bytes:
        """The projection key of ``version`` (sent only to devices enrolling this subject)."""
        return derive_template_key(self._platform.keys.secret(TEMPLATE_SECRET), subject_id, version)

    async def check_template(
        self, subject_id: str, live: bytes, operator: Operator
    ) -> TemplateCheck:
        """Compare a live capture with the subject's stored template, in the protected domain."""
        _check_subject(subject_id)
        row = await self._repo.active_template(subject_id)
        if row is None or row.template is None:
            raise NotFound(f"没有有效的人脸模板 / no face template in force for {subject_id}")
        try:
            sample = await asyncio.to_thread(self.engine.sample, live, what="live")
        except FaceRefused as refused:
            await self._log("template_1to1", "refused", refused.reasons, operator, subject_id)
            return TemplateCheck("refused", None, HAMMING_THRESHOLD, row.version, refused.reasons)
        stored = ProtectedTemplate.from_bytes(
            await self._vault.open_bytes(
                self._session,
                TEMPLATE_FIELD,
                subject_id,
                row.id,
                row.template,
                purpose=Purpose.IDENTITY_VERIFICATION,
                actor=operator.actor,
                org_id=operator.org_id,
            )
        )
        probe = protect(sample.embedding, self.template_key(subject_id, row.version))
        distance = hamming_fraction(stored, probe)
        decision = "match" if distance <= HAMMING_THRESHOLD else "no_match"
        await self._log("template_1to1", decision, [], operator, subject_id)
        return TemplateCheck(decision, distance, HAMMING_THRESHOLD, row.version, [])

    async def revoke(self, subject_id: str, operator: Operator) -> int:
        """Revoke the subject's template(s): the sealed bits are deleted. Returns how many."""
        _check_subject(subject_id)
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

    async def _log(
        self,
        kind: str,
        outcome: str,
        reasons: list[Reason],
        operator: Operator,
        subject_id: str | None,
        *,
        liveness: str = "not_checked",
    ) -> None:
        codes = ",".join(r.value for r in reasons)
        await self._repo.add(
            FaceCapture(
                id=random_bytes(16).hex(),
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
            details={"device": operator.device, "result": outcome, "reasons": codes},
        )


def _check_subject(subject_id: str | None) -> None:
    if subject_id is not None and not 0 < len(subject_id) <= SUBJECT_ID_LENGTH:
        raise InvalidInput(f"主体标识无效 / subject id must be 1..{SUBJECT_ID_LENGTH} characters")
