"""Quality gates on one detected face: size, cut off, pose, exposure, sharpness.

Each gate returns a reason a person can act on (``anju.face.reasons``). The numbers are in
:class:`QualityPolicy`; docs/biometrics.md gives the measurements they were set from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from anju.face.detector import Detection
from anju.face.pose import Pose
from anju.face.reasons import Reason


@dataclass(frozen=True)
class QualityPolicy:
    """Thresholds of the quality gates."""

    #: Smallest face box width in pixels. A 2nd-generation ID card chip photo is 102×126 pixels,
    #: its face about 70 pixels wide, so document photos must pass at this size.
    min_face_width: float = 56.0
    #: A second face at least this fraction of the main face's width counts as another person.
    other_face_fraction: float = 0.35
    #: How far (fraction of the box) a face box may run past the image edge.
    max_outside: float = 0.08
    max_abs_yaw: float = 0.30
    max_abs_roll_degrees: float = 25.0
    pitch_ratio_range: tuple[float, float] = (0.30, 0.75)
    min_mean_luma: float = 45.0
    max_mean_luma: float = 215.0
    max_highlight_fraction: float = 0.30
    #: Variance of the Laplacian over the centre of the aligned 150×150 face chip.
    min_sharpness: float = 40.0


DEFAULT_QUALITY = QualityPolicy()


def face_count_reasons(
    detections: list[Detection], policy: QualityPolicy = DEFAULT_QUALITY
) -> list[Reason]:
    """No face, or more than one face of a size that counts."""
    if not detections:
        return [Reason.NO_FACE]
    main = max(detections, key=lambda d: d.width)
    others = [
        d
        for d in detections
        if d is not main and d.width >= policy.other_face_fraction * main.width
    ]
    return [Reason.MULTIPLE_FACES] if others else []


def geometry_reasons(
    face: Detection,
    pose: Pose | None,
    image_shape: tuple[int, ...],
    policy: QualityPolicy = DEFAULT_QUALITY,
) -> list[Reason]:
    """Size, cut-off and pose gates; ``pose`` None skips the pose gate (liveness frames turn)."""
    reasons: list[Reason] = []
    height, width = image_shape[:2]
    if face.width < policy.min_face_width:
        reasons.append(Reason.FACE_TOO_SMALL)
    margin_x, margin_y = policy.max_outside * face.width, policy.max_outside * face.height
    points_inside = bool(
        np.all(face.landmarks[:, 0] >= 0)
        and np.all(face.landmarks[:, 0] < width)
        and np.all(face.landmarks[:, 1] >= 0)
        and np.all(face.landmarks[:, 1] < height)
    )
    if (
        not points_inside
        or face.left < -margin_x
        or face.top < -margin_y
        or face.right > width + margin_x
        or face.bottom > height + margin_y
    ):
        reasons.append(Reason.FACE_CUT_OFF)
        return reasons  # the pose of half a face means nothing: first get the whole face in
    if pose is None:
        return reasons
    low, high = policy.pitch_ratio_range
    if (
        abs(pose.yaw) > policy.max_abs_yaw
        or abs(pose.roll_degrees) > policy.max_abs_roll_degrees
        or not low <= pose.pitch <= high
    ):
        reasons.append(Reason.POSE)
    return reasons


def pixel_reasons(chip: NDArray[np.uint8], policy: QualityPolicy = DEFAULT_QUALITY) -> list[Reason]:
    """Exposure, then sharpness, on the aligned face chip (sharpness means little when dark)."""
    luma = _centre_luma(chip)
    mean = float(luma.mean())
    if mean < policy.min_mean_luma:
        return [Reason.TOO_DARK]
    if mean > policy.max_mean_luma or float((luma > 250).mean()) > policy.max_highlight_fraction:
        return [Reason.TOO_BRIGHT]
    if sharpness(luma) < policy.min_sharpness:
        return [Reason.BLURRY]
    return []


def _centre_luma(chip: NDArray[np.uint8]) -> NDArray[np.float64]:
    """ITU-R BT.601 luma of the chip's central region (eyes to mouth)."""
    size = chip.shape[0]
    top, bottom = int(size * 0.27), int(size * 0.73)
    left, right = int(size * 0.23), int(size * 0.77)
    rgb = chip[top:bottom, left:right].astype(np.float64)
    return np.asarray(rgb @ np.array([0.299, 0.587, 0.114]))


def sharpness(luma: NDArray[np.float64]) -> float:
    """Variance of the 4-neighbour Laplacian: low on blurred images."""
    lap = (
        luma[1:-1, :-2] + luma[1:-1, 2:] + luma[:-2, 1:-1] + luma[2:, 1:-1] - 4.0 * luma[1:-1, 1:-1]
    )
    return float(lap.var())
