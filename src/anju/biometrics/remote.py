"""Remote face checks (F8): the client captures, the platform challenges, checks and compares.

1. ``issue``: the platform draws a random liveness challenge (:mod:`anju.face.liveness`) and
   stores it, bound to the principal who asked, the person to be checked (optional for a document
   check) and the purpose; it is valid for 60 s and can be used once.
2. The client shows the prompts, records the person's head movements and sends the frames (with
   its own capture times) and, for a document check, the ID document photo, over TLS.
3. ``document_check`` / ``template_check``: one short transaction authenticates, authorises and
   *claims* the challenge (a conditional UPDATE: a replay, a second concurrent use or another
   principal's use finds nothing to claim); then, outside any transaction, the frames are decoded
   and checked against the challenge and the neutral first frame is compared with the document
   photo (1:1) or with the subject's protected template; a last transaction writes the capture
   log row and its audit entry. Pixels live only in this call's local variables.

Capture times come from the client's clock, which the platform cannot check: only their
differences are used. The sequence is placed so that its last frame is "now"; it must then
start after the challenge was issued (so a recording older than the challenge cannot fit), with
the engine's limits on gaps and duration.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.audit import AuditLog
from anju.biometrics.access import authorised
from anju.biometrics.models import LivenessChallenge
from anju.biometrics.repository import BiometricsRepository
from anju.biometrics.service import BiometricService, Operator, check_subject, shared_engine
from anju.errors import AnjuError, InvalidInput
from anju.face.compare import MATCH_THRESHOLD
from anju.face.engine import FaceEngine, FaceSample
from anju.face.image import DEFAULT_LIMITS, ImageLimits, decode_image
from anju.face.liveness import (
    DEFAULT_LIVENESS,
    Action,
    Challenge,
    Frame,
    LivenessChecker,
    LivenessPolicy,
    LivenessResult,
    new_challenge,
)
from anju.face.reasons import FaceRefused, Reason, explain_all
from anju.face.template import HAMMING_THRESHOLD
from anju.platform import Platform

#: Unused, unexpired challenges one principal may hold at a time.
MAX_OPEN_CHALLENGES = 5
#: Remote checks one process runs or queues at once; more are refused (503) rather than queued
#: without bound behind the engine's lock.
MAX_IN_FLIGHT = 4
#: Limits of one frame of the sequence (a VGA frame is plenty for a face ≥ 56 px wide).
FRAME_LIMITS = ImageLimits(max_bytes=256 * 1024, max_pixels=640 * 480)
#: Limits of the document photo.
DOCUMENT_LIMITS = ImageLimits(max_bytes=4 * 1024 * 1024, max_pixels=DEFAULT_LIMITS.max_pixels)
#: The request body of a remote check (JSON with base64 images) may be this large.
MAX_BODY_BYTES = 8 * 1024 * 1024


class CheckPurpose(StrEnum):
    """What a challenge may be used for."""

    DOCUMENT_CHECK = "document_check"  # live person vs ID document photo (R9c, R10)
    TEMPLATE_CHECK = "template_check"  # live person vs their enrolled protected template (F3)


class TooManyChallenges(AnjuError):
    status, code = 429, "too_many_challenges"


class BiometricsBusy(AnjuError):
    status, code = 503, "biometrics_busy"


@dataclass(frozen=True)
class RemoteCapture:
    """What the client sent: frames as (client capture time in ms, encoded image), and the
    document photo for a document check."""

    frames: list[tuple[int, bytes]] = field(repr=False)
    document: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RemoteResult:
    """The outcome of a remote check: no image, no embedding, no template."""

    capture_id: str
    purpose: CheckPurpose
    decision: str  # "match" | "no_match" | "refused"
    distance: float | None
    threshold: float
    liveness: LivenessResult | None
    reasons: dict[str, list[Reason]]  # "challenge", "liveness", "document" — only refusals

    def as_dict(self) -> dict[str, Any]:
        return {
            "capture_id": self.capture_id,
            "purpose": self.purpose.value,
            "decision": self.decision,
            "metric": "embedding_distance"
            if self.purpose is CheckPurpose.DOCUMENT_CHECK
            else "template_hamming",
            "distance": None if self.distance is None else round(self.distance, 4),
            "threshold": self.threshold,
            "liveness": None if self.liveness is None else self.liveness.as_dict(),
            "reasons": {what: explain_all(r) for what, r in self.reasons.items() if r},
        }


@dataclass(frozen=True)
class _Examined:
    """What the compute step found (kept in memory for the last step only)."""

    liveness: LivenessResult | None
    reasons: dict[str, list[Reason]]
    sample: FaceSample | None = field(default=None, repr=False)
    distance: float | None = None
    matched: bool = False


_in_flight = 0


class RemoteChecks:
    """Issue challenges and run remote checks; each step opens its own short transaction."""

    def __init__(
        self,
        platform: Platform,
        *,
        engine: FaceEngine | None = None,
        policy: LivenessPolicy = DEFAULT_LIVENESS,
    ) -> None:
        self.platform = platform
        self.policy = policy
        self._engine = engine

    def _now_ms(self) -> int:
        return int(self.platform.clock.now().timestamp() * 1000)

    # --- challenges ------------------------------------------------------------------------
    async def issue(
        self, token: str, purpose: CheckPurpose, subject_id: str | None
    ) -> tuple[Challenge, LivenessChallenge]:
        """A fresh challenge for the caller (``biometrics.verify``), stored for one use."""
        check_subject(subject_id)
        if purpose is CheckPurpose.TEMPLATE_CHECK and subject_id is None:
            raise InvalidInput(
                "模板核验须指明主体 / a template check needs the subject_id to check against"
            )
        challenge = new_challenge(self._now_ms(), self.policy)
        async with self._as_verifier(token, "challenge_issued") as (session, principal):
            repo = BiometricsRepository(session)
            now = self.platform.clock.now()
            await repo.purge_challenges(now)
            if await repo.open_challenges(principal.actor, now) >= MAX_OPEN_CHALLENGES:
                raise TooManyChallenges(
                    f"未使用的活体挑战过多（最多 {MAX_OPEN_CHALLENGES} 个）/ too many open "
                    f"liveness challenges (at most {MAX_OPEN_CHALLENGES}): use or let them expire",
                    details={"max_open": MAX_OPEN_CHALLENGES},
                )
            if purpose is CheckPurpose.TEMPLATE_CHECK:
                assert subject_id is not None
                await BiometricService(self.platform, session).require_template(subject_id)
            row = LivenessChallenge(
                id=challenge.id,
                actor=principal.actor,
                org_id=principal.org_id,
                subject_id=subject_id,
                purpose=purpose.value,
                actions=",".join(a.value for a in challenge.actions),
                issued_at=now,
                expires_at=now + timedelta(milliseconds=self.policy.challenge_ttl_ms),
                used_at=None,
            )
            await repo.add(row)
            await AuditLog(self.platform).record(
                session,
                action="biometric.challenge_issued",
                actor=principal.actor,
                org_id=principal.org_id,
                target=None if subject_id is None else f"subject:{subject_id}",
                details={"purpose": purpose.value, "challenge": challenge.id},
            )
        return challenge, row

    # --- checks ----------------------------------------------------------------------------
    async def document_check(
        self,
        token: str,
        challenge_id: str,
        capture: RemoteCapture,
        *,
        device: str,
        subject_id: str | None,
    ) -> RemoteResult:
        """Liveness against the challenge, then the neutral frame vs the document photo."""
        if capture.document is None:
            raise InvalidInput("缺少证件照片 / the document photo is missing")
        return await self._check(
            token, CheckPurpose.DOCUMENT_CHECK, challenge_id, capture, device, subject_id
        )

    async def template_check(
        self, token: str, challenge_id: str, capture: RemoteCapture, *, device: str, subject_id: str
    ) -> RemoteResult:
        """Liveness against the challenge, then the neutral frame vs the subject's template."""
        return await self._check(
            token, CheckPurpose.TEMPLATE_CHECK, challenge_id, capture, device, subject_id
        )

    async def _check(
        self,
        token: str,
        purpose: CheckPurpose,
        challenge_id: str,
        capture: RemoteCapture,
        device: str,
        subject_id: str | None,
    ) -> RemoteResult:
        global _in_flight
        check_subject(subject_id)
        if _in_flight >= MAX_IN_FLIGHT:
            raise BiometricsBusy(
                "人脸核验繁忙，请稍后重试 / face checks are busy: try again in a moment",
                details={"retry_after_seconds": 2},
            )
        _in_flight += 1
        try:
            operator, claimed = await self._claim(token, purpose, challenge_id, device, subject_id)
            if isinstance(claimed, Reason):
                examined = _Examined(None, {"challenge": [claimed]})
            else:
                examined = await asyncio.to_thread(
                    self._examine, purpose, claimed, capture, self._now_ms()
                )
            return await self._record(purpose, examined, operator, subject_id)
        finally:
            _in_flight -= 1

    def _as_verifier(
        self, token: str, what: str
    ) -> contextlib.AbstractAsyncContextManager[tuple[AsyncSession, Principal]]:
        return authorised(self.platform, token, Cap.BIOMETRICS_VERIFY, f"biometric.{what}")

    async def _claim(
        self,
        token: str,
        purpose: CheckPurpose,
        challenge_id: str,
        device: str,
        subject_id: str | None,
    ) -> tuple[Operator, Challenge | Reason]:
        """Authenticate, authorise and use up the challenge, in one committed transaction: the
        challenge, or why it cannot be used."""
        async with self._as_verifier(token, f"remote_{purpose.value}") as (session, principal):
            operator = Operator(principal.actor, device, principal.org_id)
            repo = BiometricsRepository(session)
            now = self.platform.clock.now()
            row = await repo.claim_challenge(challenge_id, principal.actor, now)
            if row is None:
                known = await repo.challenge_of(challenge_id, principal.actor)
                used = Reason.LIVENESS_CHALLENGE_USED
                return operator, used if known is not None else Reason.LIVENESS_CHALLENGE_UNKNOWN
            if row.purpose != purpose.value or row.subject_id != subject_id:
                return operator, Reason.LIVENESS_CHALLENGE_UNKNOWN
            if row.expires_at < now:
                return operator, Reason.LIVENESS_CHALLENGE_EXPIRED
            actions = tuple(Action(a) for a in row.actions.split(","))
            return operator, Challenge(row.id, actions, _ms(row.issued_at), _ms(row.expires_at))

    def _examine(
        self, purpose: CheckPurpose, challenge: Challenge, capture: RemoteCapture, now_ms: int
    ) -> _Examined:
        """Liveness, then 1:1 against the document (in a worker thread; no database)."""
        count = len(capture.frames)
        if count < self.policy.min_frames:
            return _Examined(None, {"liveness": [Reason.LIVENESS_TOO_FEW_FRAMES]})
        if count > self.policy.max_frames:
            return _Examined(None, {"liveness": [Reason.LIVENESS_TOO_MANY_FRAMES]})
        last = capture.frames[-1][0]
        try:
            frames = [
                Frame(now_ms - (last - at), decode_image(data, FRAME_LIMITS, what="liveness"))
                for at, data in capture.frames
            ]
        except FaceRefused as refused:
            return _Examined(None, {"liveness": refused.reasons})
        engine = self._engine or shared_engine()
        liveness = LivenessChecker(engine, self.policy).check(challenge, frames, now_ms)
        del frames
        if not liveness.live or liveness.sample is None:
            return _Examined(liveness, {"liveness": liveness.reasons})
        if purpose is CheckPurpose.TEMPLATE_CHECK:
            return _Examined(liveness, {}, liveness.sample)
        assert capture.document is not None
        try:
            document = engine.sample_pixels(
                decode_image(capture.document, DOCUMENT_LIMITS, what="document"), what="document"
            )
        except FaceRefused as refused:
            return _Examined(liveness, {"document": refused.reasons})
        verdict = engine.decide(document.embedding, liveness.sample.embedding)
        return _Examined(liveness, {}, None, verdict.distance, verdict.matched)

    async def _record(
        self,
        purpose: CheckPurpose,
        examined: _Examined,
        operator: Operator,
        subject_id: str | None,
    ) -> RemoteResult:
        """The decision, logged (capture log + audit) in the last transaction."""
        live = examined.liveness
        liveness = "not_checked" if live is None else ("passed" if live.live else "failed")
        refusals = [r for reasons in examined.reasons.values() for r in reasons]
        kind = f"remote_{purpose.value}"
        threshold = MATCH_THRESHOLD if purpose is CheckPurpose.DOCUMENT_CHECK else HAMMING_THRESHOLD
        async with self.platform.db.transaction() as session:
            service = BiometricService(self.platform, session, engine=self._engine)
            if refusals:
                capture_id = await service.record_capture(
                    kind, "refused", refusals, operator, subject_id, liveness=liveness
                )
                return RemoteResult(
                    capture_id, purpose, "refused", None, threshold, live, examined.reasons
                )
            if purpose is CheckPurpose.TEMPLATE_CHECK:
                assert subject_id is not None
                assert examined.sample is not None
                checked = await service.match_template(
                    subject_id, examined.sample, operator, kind=kind, liveness=liveness
                )
                assert checked.capture_id is not None
                return RemoteResult(
                    checked.capture_id,
                    purpose,
                    checked.decision,
                    checked.hamming,
                    threshold,
                    live,
                    {},
                )
            decision = "match" if examined.matched else "no_match"
            capture_id = await service.record_capture(
                kind, decision, [], operator, subject_id, liveness=liveness
            )
            return RemoteResult(
                capture_id, purpose, decision, examined.distance, threshold, live, {}
            )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
