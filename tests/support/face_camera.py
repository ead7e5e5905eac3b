"""A camera for the reference lock in tests: a person (a real package photo, moved by depth
warps, tests/support/face_frames.py) in front of it, doing what the screen asks — or not."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from anju.face.detector import Detection
from anju.face.liveness import Challenge, Frame
from anju.kit.clock import FixedClock
from tests.support.face_frames import performance


@dataclass
class Person:
    """Who stands at the camera: a portrait and where its face is."""

    image: np.ndarray
    face: Detection


class PersonCamera:
    """Records ``person`` following the prompts (``still``: a photo held up instead). The
    capture takes the time it takes: the shared clock moves on past the last frame."""

    def __init__(self, person: Person, clock: FixedClock, *, still: bool = False) -> None:
        self.person = person
        self.clock = clock
        self.still = still
        self.captures = 0
        #: The first frame of every capture (for the residue checks: it must never leave).
        self.first_frames: list[np.ndarray] = []

    async def capture(self, challenge: Challenge) -> list[Frame]:
        start = challenge.issued_at_ms + 300
        frames = await asyncio.to_thread(
            performance, self.person.image, self.person.face, challenge.actions, start_ms=start
        )
        if self.still:
            frames = [Frame(f.at_ms, frames[0].image) for f in frames]
        now_ms = int(self.clock.now().timestamp() * 1000)
        self.clock.advance(seconds=max(0, frames[-1].at_ms + 100 - now_ms) / 1000)
        self.captures += 1
        self.first_frames.append(frames[0].image)
        return frames
