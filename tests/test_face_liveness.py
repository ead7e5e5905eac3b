"""Active liveness (F4, L8): a randomised head-movement challenge over a short frame sequence.

Frames are synthesised from real package photos by a depth warp (tests/support/face_frames.py).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from PIL import Image

from anju.face.engine import FaceEngine
from anju.face.liveness import (
    DEFAULT_LIVENESS,
    Action,
    Challenge,
    Frame,
    LivenessChecker,
    new_challenge,
)
from anju.face.reasons import Reason
from tests.support import face_derive as derive
from tests.support.face_frames import HOPPER_BOX, performance, portrait
from tests.support.face_images import FacePhotos

pytestmark = pytest.mark.req("F4", "L8")

T0 = 1_760_000_000_000  # ms
ORDER = (Action.TURN_LEFT, Action.LOOK_UP, Action.TURN_RIGHT)


@pytest.fixture(scope="module")
def hopper(face_photos: FacePhotos, face_engine: FaceEngine):
    image = portrait(face_photos["grace_hopper.jpg"], HOPPER_BOX)
    return image, face_engine.detector.detect(image)[0]


@pytest.fixture(scope="module")
def checker(face_engine: FaceEngine) -> LivenessChecker:
    return LivenessChecker(face_engine)


def _challenge(actions=ORDER) -> Challenge:
    return Challenge("c" * 32, tuple(actions), T0, T0 + 60_000)


@pytest.mark.parametrize(
    "actions",
    [
        None,  # a fresh random challenge
        (Action.LOOK_DOWN, Action.TURN_RIGHT, Action.LOOK_UP),
        (Action.TURN_LEFT, Action.LOOK_DOWN),
    ],
)
def test_a_person_doing_the_challenge_passes(
    checker: LivenessChecker,
    hopper,
    face_engine: FaceEngine,
    face_photos: FacePhotos,
    actions: tuple[Action, ...] | None,
) -> None:
    image, face = hopper
    challenge = new_challenge(T0) if actions is None else _challenge(actions)
    frames = performance(image, face, challenge.actions, start_ms=T0 + 500)
    result = checker.check(challenge, frames, now_ms=frames[-1].at_ms + 200)
    assert result.live, result.reasons
    assert result.performed == list(challenge.actions)
    assert result.sample is not None
    # The neutral frame is what a 1:1 check then uses: it matches her other photo.
    reference = face_engine.sample(face_photos["grace_hopper.jpg"]).embedding
    assert face_engine.decide(reference, result.sample.embedding).matched


def test_a_still_photo_is_rejected(checker: LivenessChecker, hopper) -> None:
    image, face = hopper
    # A photo held in front of the camera: every frame the same picture, with fresh camera noise.
    still = [
        Frame(T0 + 500 + 150 * i, performance(image, face, [], start_ms=0, seed=i)[0].image)
        for i in range(12)
    ]
    result = checker.check(_challenge(), still, now_ms=T0 + 5_000)
    assert not result.live
    assert result.reasons == [Reason.LIVENESS_NOT_PERFORMED]
    assert result.performed == []


def test_a_replayed_single_frame_is_rejected(checker: LivenessChecker, hopper) -> None:
    image, face = hopper
    good = performance(image, face, ORDER, start_ms=T0 + 500)
    replay = [Frame(f.at_ms, good[3].image) for f in good]
    result = checker.check(_challenge(), replay, now_ms=good[-1].at_ms)
    assert result.reasons == [Reason.LIVENESS_REPEATED_FRAMES]
    # One frozen frame in the middle of a real performance is enough.
    frozen = [*good[:5], Frame(good[5].at_ms, good[4].image), *good[6:]]
    assert checker.check(_challenge(), frozen, now_ms=good[-1].at_ms).reasons == [
        Reason.LIVENESS_REPEATED_FRAMES
    ]


def test_movements_in_the_wrong_order_are_rejected(checker: LivenessChecker, hopper) -> None:
    image, face = hopper
    frames = performance(
        image, face, (Action.LOOK_UP, Action.TURN_LEFT, Action.TURN_RIGHT), start_ms=T0 + 500
    )
    result = checker.check(_challenge(), frames, now_ms=frames[-1].at_ms)
    assert not result.live
    assert result.reasons == [Reason.LIVENESS_WRONG_ORDER]


def test_an_incomplete_performance_is_rejected(checker: LivenessChecker, hopper) -> None:
    image, face = hopper
    frames = performance(image, face, ORDER[:2], start_ms=T0 + 500)
    result = checker.check(_challenge(), frames, now_ms=frames[-1].at_ms)
    assert result.reasons == [Reason.LIVENESS_NOT_PERFORMED]
    assert result.performed == list(ORDER[:2])


def test_a_swap_to_another_face_is_rejected(
    checker: LivenessChecker, hopper, face_photos: FacePhotos, face_engine: FaceEngine
) -> None:
    image, face = hopper
    other = portrait(face_photos["obama.jpg"], (0.3, 0.05, 0.78, 0.45))
    other = np.asarray(Image.fromarray(other).resize((image.shape[1], image.shape[0])))
    other_face = face_engine.detector.detect(other)[0]
    first = performance(image, face, ORDER[:1], start_ms=T0 + 500)
    rest = performance(other, other_face, ORDER[1:], start_ms=first[-1].at_ms + 150)
    result = checker.check(_challenge(), first + rest[2:], now_ms=rest[-1].at_ms)
    assert result.reasons == [Reason.LIVENESS_FACE_CHANGED]


def test_sequence_limits(checker: LivenessChecker, hopper, face_photos: FacePhotos) -> None:
    image, face = hopper
    good = performance(image, face, ORDER, start_ms=T0 + 500)
    end = good[-1].at_ms
    challenge = _challenge()

    def reasons(frames: list[Frame], now: int = end, ch: Challenge = challenge) -> list[Reason]:
        return checker.check(ch, frames, now_ms=now).reasons

    assert reasons(good[:4]) == [Reason.LIVENESS_TOO_FEW_FRAMES]
    many = [Frame(T0 + 500 + 10 * i, good[i % len(good)].image) for i in range(91)]
    assert reasons(many) == [Reason.LIVENESS_TOO_MANY_FRAMES]
    assert reasons(good, now=challenge.expires_at_ms + 1) == [Reason.LIVENESS_CHALLENGE_EXPIRED]
    before = [dataclasses.replace(f, at_ms=f.at_ms - 1_000) for f in good]
    assert reasons(before) == [Reason.LIVENESS_BAD_TIMING]  # captured before it was issued
    shuffled = [good[1], good[0], *good[2:]]
    assert reasons(shuffled) == [Reason.LIVENESS_BAD_TIMING]
    slow = [dataclasses.replace(f, at_ms=T0 + 500 + 1_400 * i) for i, f in enumerate(good)]
    assert reasons(slow, now=slow[-1].at_ms) == [Reason.LIVENESS_TOO_LONG]
    strict = LivenessChecker(
        checker.engine, dataclasses.replace(DEFAULT_LIVENESS, step_timeout_ms=250)
    )
    assert strict.check(challenge, good, now_ms=end).reasons == [Reason.LIVENESS_STEP_TIMEOUT]
    cat = np.asarray(
        derive.load(face_photos["chelsea.png"]).resize((image.shape[1], image.shape[0]))
    )
    assert reasons([*good[:6], Frame(good[6].at_ms, cat), *good[7:]]) == [Reason.NO_FACE]


def test_challenges_are_random_and_complete() -> None:
    drawn = [new_challenge(T0) for _ in range(400)]
    assert len({c.id for c in drawn}) == 400
    assert all(len(set(c.actions)) == len(c.actions) == 3 for c in drawn)
    orders = {c.actions for c in drawn}
    assert len(orders) >= 20  # of the 24 possible orders of 3 out of 4 movements
    assert set(itertools.chain.from_iterable(orders)) == set(Action)
    out = drawn[0].as_dict()
    assert out["expires_at_ms"] - out["issued_at_ms"] == 60_000
    assert all(" / " in prompt for prompt in out["prompts"])
