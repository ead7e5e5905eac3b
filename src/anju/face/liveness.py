"""Active liveness: a randomised head-movement challenge checked on a short frame sequence (F4).

The platform (or the device) issues a :class:`Challenge`: two to four movements in random order
out of *turn left*, *turn right*, *look up*, *look down*, valid for a minute. The person performs
them on camera; the frames (with capture times) are checked here:

1. the challenge is known, unexpired, and the frames were captured after it was issued;
2. 6–90 frames, strictly increasing times, no gap over 1.5 s, at most 20 s in all;
3. no two consecutive frames are (nearly) identical — an injected still or looped frame;
4. every frame shows exactly one face, large enough and wholly in the picture, and the face
   moves continuously from frame to frame (no cut to another face);
5. the first frame is frontal; it is the person's neutral pose. Each movement must then be seen
   (pose ratio past a threshold relative to neutral, :mod:`anju.face.pose`) in the order asked,
   each within 6 s, returning to neutral in between; a movement out of turn fails at once;
6. the first and the last frame show the same person (embeddings), and the last frame is
   neutral again (turned faces embed less reliably, so frames in between are not compared).

Only head pose is checked: the five landmarks available under a licence that allows commercial
use (CenterFace's, dlib's 5-point model) carry no eyelid or lip-opening information, so blinks
and "open your mouth" cannot be checked honestly. What this stops and what it does not is in
docs/biometrics.md; it is *not* certified presentation-attack detection (ISO/IEC 30107-3).
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from anju.face.compare import compare_embeddings
from anju.face.detector import Detection
from anju.face.engine import FaceEngine, FaceSample
from anju.face.image import RGBImage
from anju.face.pose import Pose, estimate_pose
from anju.face.quality import face_count_reasons, geometry_reasons
from anju.face.reasons import FaceRefused, Reason, explain_all


class Action(StrEnum):
    """A movement the person is asked to make (their own left/right, not the screen's)."""

    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"
    LOOK_UP = "look_up"
    LOOK_DOWN = "look_down"


PROMPTS: dict[Action, str] = {
    Action.TURN_LEFT: "请向左转头 / turn your head to your left",
    Action.TURN_RIGHT: "请向右转头 / turn your head to your right",
    Action.LOOK_UP: "请抬头 / look up",
    Action.LOOK_DOWN: "请低头 / look down",
}


@dataclass(frozen=True)
class LivenessPolicy:
    """Limits of the challenge and thresholds on the pose ratios (see docs/biometrics.md)."""

    actions_per_challenge: int = 3
    challenge_ttl_ms: int = 60_000
    min_frames: int = 6
    max_frames: int = 90
    max_duration_ms: int = 20_000
    max_gap_ms: int = 1_500
    step_timeout_ms: int = 6_000
    #: Change of the yaw / pitch ratio from neutral that counts as the movement being made.
    yaw_delta: float = 0.12
    pitch_delta: float = 0.06
    #: The first frame must be frontal within this yaw ratio.
    neutral_max_yaw: float = 0.15
    #: Consecutive frames closer than this (mean absolute grey-level difference on a grid of
    #: pixels) are repeats: camera noise alone differs by 1–3 levels.
    min_frame_difference: float = 0.3
    #: Largest jump of the face centre between frames, in face widths, and of its size (ratio).
    max_jump: float = 0.6
    max_size_change: float = 1.4


DEFAULT_LIVENESS = LivenessPolicy()


@dataclass(frozen=True)
class Challenge:
    """What the person is asked to do, and until when."""

    id: str
    actions: tuple[Action, ...]
    issued_at_ms: int
    expires_at_ms: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "actions": [a.value for a in self.actions],
            "prompts": [PROMPTS[a] for a in self.actions],
            "issued_at_ms": self.issued_at_ms,
            "expires_at_ms": self.expires_at_ms,
        }


def new_challenge(now_ms: int, policy: LivenessPolicy = DEFAULT_LIVENESS) -> Challenge:
    """A fresh random challenge (CSPRNG): which movements, in which order."""
    if not 2 <= policy.actions_per_challenge <= len(Action):
        raise ValueError("a challenge asks for 2 to 4 movements")
    pool = list(Action)
    actions = []
    for _ in range(policy.actions_per_challenge):
        actions.append(pool.pop(secrets.randbelow(len(pool))))
    return Challenge(
        secrets.token_hex(16), tuple(actions), now_ms, now_ms + policy.challenge_ttl_ms
    )


@dataclass(frozen=True)
class Frame:
    """One captured frame: capture time (ms, the capture device's clock) and pixels."""

    at_ms: int
    image: RGBImage = field(repr=False)


@dataclass(frozen=True)
class LivenessResult:
    live: bool
    reasons: list[Reason]
    performed: list[Action]
    #: The neutral first frame, checked and embedded: what a 1:1 comparison should use.
    sample: FaceSample | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "performed": [a.value for a in self.performed],
            "reasons": explain_all(self.reasons),
        }


def _fail(reason: Reason, performed: list[Action] | None = None) -> LivenessResult:
    return LivenessResult(False, [reason], list(performed or []))


@dataclass(frozen=True)
class _Seen:
    face: Detection
    pose: Pose


class LivenessChecker:
    """Checks a frame sequence against a challenge with the engine's detector and embedder."""

    def __init__(self, engine: FaceEngine, policy: LivenessPolicy = DEFAULT_LIVENESS) -> None:
        self.engine = engine
        self.policy = policy

    def check(self, challenge: Challenge, frames: list[Frame], now_ms: int) -> LivenessResult:
        """Whether ``frames`` perform ``challenge`` live (see the module docstring)."""
        early = self._sequence_reason(challenge, frames, now_ms)
        if early is not None:
            return _fail(early)
        seen: list[_Seen] = []
        for frame in frames:
            try:
                seen.append(self._look(frame.image))
            except FaceRefused as refused:
                return LivenessResult(False, refused.reasons, [])
            if len(seen) > 1 and not self._continuous(seen[-2].face, seen[-1].face):
                return _fail(Reason.LIVENESS_FACE_CHANGED)
        try:
            first, *others = (
                self.engine.sample_pixels(frames[i].image, what="liveness")
                for i in (0, len(frames) - 1)
            )
        except FaceRefused as refused:
            return LivenessResult(False, refused.reasons, [])
        for other in others:
            if not compare_embeddings(
                first.embedding, other.embedding, self.engine.threshold
            ).match:
                return _fail(Reason.LIVENESS_FACE_CHANGED)
        neutral = seen[0].pose
        if abs(neutral.yaw) > self.policy.neutral_max_yaw:
            return _fail(Reason.LIVENESS_NO_NEUTRAL_START)
        outcome = self._follow(challenge, frames, seen, neutral)
        if outcome is not None:
            return outcome
        if self._classify(seen[-1].pose, neutral) != "neutral":
            return _fail(Reason.LIVENESS_NOT_PERFORMED, list(challenge.actions))
        return LivenessResult(True, [], list(challenge.actions), first)

    # --- steps -----------------------------------------------------------------------------
    def _sequence_reason(
        self, challenge: Challenge, frames: list[Frame], now_ms: int
    ) -> Reason | None:
        p = self.policy
        if now_ms > challenge.expires_at_ms:
            return Reason.LIVENESS_CHALLENGE_EXPIRED
        if len(frames) < p.min_frames:
            return Reason.LIVENESS_TOO_FEW_FRAMES
        if len(frames) > p.max_frames:
            return Reason.LIVENESS_TOO_MANY_FRAMES
        times = [f.at_ms for f in frames]
        if times[0] < challenge.issued_at_ms or times[-1] > now_ms:
            return Reason.LIVENESS_BAD_TIMING
        gaps = np.diff(times)
        if np.any(gaps <= 0) or np.any(gaps > p.max_gap_ms):
            return Reason.LIVENESS_BAD_TIMING
        if times[-1] - times[0] > p.max_duration_ms:
            return Reason.LIVENESS_TOO_LONG
        thumbs = [_thumbnail(f.image) for f in frames]
        for a, b in itertools.pairwise(thumbs):
            if a.shape == b.shape and float(np.abs(a - b).mean()) < p.min_frame_difference:
                return Reason.LIVENESS_REPEATED_FRAMES
        return None

    def _look(self, image: RGBImage) -> _Seen:
        detections = self.engine.detector.detect(image)
        reasons = face_count_reasons(detections, self.engine.quality)
        if reasons:
            raise FaceRefused(reasons, what="liveness")
        face = max(detections, key=lambda d: d.width)
        reasons = geometry_reasons(face, None, image.shape, self.engine.quality)
        if reasons:
            raise FaceRefused(reasons, what="liveness")
        return _Seen(face, estimate_pose(face))

    def _continuous(self, before: Detection, after: Detection) -> bool:
        p = self.policy
        jump = np.hypot(
            (after.left + after.right - before.left - before.right) / 2,
            (after.top + after.bottom - before.top - before.bottom) / 2,
        )
        ratio = after.width / before.width
        return bool(
            jump <= p.max_jump * before.width
            and 1 / p.max_size_change <= ratio <= p.max_size_change
        )

    def _classify(self, pose: Pose, neutral: Pose) -> str:
        """``neutral``, ``moving`` (between), or the Action the pose shows."""
        sy = (pose.yaw - neutral.yaw) / self.policy.yaw_delta
        sp = (pose.pitch - neutral.pitch) / self.policy.pitch_delta
        if max(abs(sy), abs(sp)) < 0.5:
            return "neutral"
        if max(abs(sy), abs(sp)) < 1.0:
            return "moving"
        if abs(sy) >= abs(sp):
            return Action.TURN_LEFT if sy > 0 else Action.TURN_RIGHT
        return Action.LOOK_DOWN if sp > 0 else Action.LOOK_UP

    def _follow(
        self, challenge: Challenge, frames: list[Frame], seen: list[_Seen], neutral: Pose
    ) -> LivenessResult | None:
        """Walk the frames through the challenge; a failure result, or None when all were seen."""
        performed: list[Action] = []
        step_started = frames[0].at_ms
        awaiting_neutral = False
        for frame, look in zip(frames[1:], seen[1:], strict=True):
            state = self._classify(look.pose, neutral)
            if awaiting_neutral:
                if state == "neutral":
                    awaiting_neutral = False
                    step_started = frame.at_ms
                elif state not in ("moving", performed[-1]):
                    return _fail(Reason.LIVENESS_WRONG_ORDER, performed)
                continue
            if len(performed) == len(challenge.actions):
                if state not in ("neutral", "moving"):
                    return _fail(Reason.LIVENESS_WRONG_ORDER, performed)
                continue
            if frame.at_ms - step_started > self.policy.step_timeout_ms:
                return _fail(Reason.LIVENESS_STEP_TIMEOUT, performed)
            expected = challenge.actions[len(performed)]
            if state == expected:
                performed.append(expected)
                awaiting_neutral = True
            elif state not in ("neutral", "moving"):
                return _fail(Reason.LIVENESS_WRONG_ORDER, performed)
        if len(performed) < len(challenge.actions):
            return _fail(Reason.LIVENESS_NOT_PERFORMED, performed)
        return None


def _thumbnail(image: RGBImage) -> NDArray[np.float64]:
    """Grey values on a 64×48 grid of single pixels (not block means: sensor noise must stay,
    so that two live frames of a person holding still still differ, while a repeated frame
    does not)."""
    height, width = image.shape[:2]
    rows = np.linspace(0, height - 1, 48).astype(int)
    cols = np.linspace(0, width - 1, 64).astype(int)
    grid = image[rows][:, cols].astype(np.float64)
    grey: NDArray[np.float64] = grid @ np.array([0.299, 0.587, 0.114])
    return grey
