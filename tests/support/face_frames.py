"""Synthetic head movements for liveness tests, made from one real photo by a depth warp.

A still photo has no depth, so a plain affine warp cannot move the nose relative to the eyes as
a real head turn does. Here the face is given a rough depth map — a half-ellipsoid head plus a
bump at the nose tip, sized from the detected landmarks — and every pixel is displaced by
``depth × sin(angle)`` (yaw horizontally, pitch vertically), the first-order image motion of a
head rotating about an axis behind the face. The inverse map is found by fixed-point iteration
and sampled bilinearly. It is a geometric approximation of a head turn, not a rendering of one:
tests built on it show the liveness *logic* works on pose changes of realistic size.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from anju.face.detector import Detection
from anju.face.liveness import Action, Frame
from tests.support import face_derive as derive

#: (yaw, pitch) in degrees of the peak of each movement; the person's left turn moves the nose
#: towards the right of the (non-mirrored) image.
PEAK: dict[Action, tuple[float, float]] = {
    Action.TURN_LEFT: (25.0, 0.0),
    Action.TURN_RIGHT: (-25.0, 0.0),
    Action.LOOK_UP: (0.0, -30.0),
    Action.LOOK_DOWN: (0.0, 30.0),
}


def head_pose_warp(
    image: NDArray[np.uint8], face: Detection, yaw_deg: float, pitch_deg: float
) -> NDArray[np.uint8]:
    """``image`` with the face turned by about ``yaw_deg`` / ``pitch_deg``."""
    marks = face.landmarks
    eyes = (marks[0] + marks[1]) / 2
    mouth = (marks[3] + marks[4]) / 2
    iod = float(np.linalg.norm(marks[1] - marks[0]))
    centre = (eyes + mouth) / 2
    half_w, half_h, depth = 1.25 * iod, 1.7 * iod, 1.0 * iod
    nose, bump, sigma = marks[2], 0.7 * iod, 0.4 * iod

    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)

    def displacement(px: NDArray[np.float64], py: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
        inside = 1.0 - ((px - centre[0]) / half_w) ** 2 - ((py - centre[1]) / half_h) ** 2
        z = depth * np.sqrt(np.clip(inside, 0.0, None))
        z += bump * np.exp(-((px - nose[0]) ** 2 + (py - nose[1]) ** 2) / (2 * sigma**2))
        return z * math.sin(math.radians(yaw_deg)), z * math.sin(math.radians(pitch_deg))

    sx, sy = xs.copy(), ys.copy()
    for _ in range(6):
        dx, dy = displacement(sx, sy)
        sx, sy = xs - dx, ys - dy
    return _bilinear(image, sx, sy)


def _bilinear(image: NDArray[np.uint8], sx: NDArray, sy: NDArray) -> NDArray[np.uint8]:
    height, width = image.shape[:2]
    sx = np.clip(sx, 0, width - 1.001)
    sy = np.clip(sy, 0, height - 1.001)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    img = image.astype(np.float64)
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bottom = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return np.clip(top * (1 - fy) + bottom * fy, 0, 255).astype(np.uint8)


def performance(
    image: NDArray[np.uint8],
    face: Detection,
    actions: list[Action] | tuple[Action, ...],
    *,
    start_ms: int,
    step_ms: int = 150,
    seed: int = 7,
) -> list[Frame]:
    """Frames of a person doing ``actions``: neutral, then for each a turn out and back.

    A little sensor-like noise is added to each frame, as a camera would.
    """
    rng = np.random.default_rng(seed)
    poses: list[tuple[float, float]] = [(0.0, 0.0), (0.0, 0.0)]
    for action in actions:
        yaw, pitch = PEAK[action]
        poses += [(yaw * f, pitch * f) for f in (0.4, 0.8, 1.0, 0.5, 0.0)]
    frames = []
    for i, (yaw, pitch) in enumerate(poses):
        warped = head_pose_warp(image, face, yaw, pitch) if (yaw or pitch) else image
        noisy = np.clip(warped.astype(np.int16) + rng.integers(-3, 4, warped.shape), 0, 255)
        frames.append(Frame(start_ms + i * step_ms, noisy.astype(np.uint8)))
    return frames


def portrait(photo: bytes, box: tuple[float, float, float, float]) -> NDArray[np.uint8]:
    """A head-and-shoulders crop of ``photo`` (box as fractions), at most 320 px a side."""
    img = derive.load(derive.crop(photo, *box))
    img.thumbnail((320, 320))
    return np.asarray(img)


#: The crop of grace_hopper.jpg the liveness tests perform with.
HOPPER_BOX = (0.1, 0.05, 0.9, 0.75)


def frame_json(frame: Frame, quality: int = 92) -> dict[str, object]:
    """A frame as a remote client sends it: capture time and a base64 JPEG."""
    out = io.BytesIO()
    Image.fromarray(frame.image).save(out, "JPEG", quality=quality)
    return {"at_ms": frame.at_ms, "image": base64.b64encode(out.getvalue()).decode()}
