"""Head pose from the five CenterFace landmarks, as ratios that need no camera calibration.

In the frame of the eye line (rotated so the eyes are level, scaled by the eye distance):

- ``yaw``: horizontal offset of the nose tip from the midpoint of the eyes. It grows positive
  when the person turns to *their* left (the nose moves to the right of a non-mirrored image).
- ``pitch``: the nose tip's height between the eye line (0) and the mouth line (1). It falls
  when the person looks up and rises when they look down (the nose tip stands out of the face).
- ``roll_degrees``: the tilt of the eye line.

These are not angles: the nose offset for a given turn depends on the person's face. Liveness
therefore compares each frame with the person's own neutral frame, not with fixed values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from anju.face.detector import Detection


@dataclass(frozen=True)
class Pose:
    yaw: float
    pitch: float
    roll_degrees: float


def estimate_pose(face: Detection) -> Pose:
    """The pose ratios of one detected face."""
    points = face.landmarks
    eye_a, eye_b, nose = points[0], points[1], points[2]
    mouth = (points[3] + points[4]) / 2.0
    eyes_mid = (eye_a + eye_b) / 2.0
    dx, dy = float(eye_b[0] - eye_a[0]), float(eye_b[1] - eye_a[1])
    eye_distance = math.hypot(dx, dy)
    if eye_distance < 1e-6:
        return Pose(0.0, 0.0, 0.0)
    angle = math.atan2(dy, dx)
    cos, sin = math.cos(-angle), math.sin(-angle)
    rotate = np.array([[cos, -sin], [sin, cos]])
    nose_n = rotate @ (nose - eyes_mid) / eye_distance
    mouth_n = rotate @ (mouth - eyes_mid) / eye_distance
    pitch = float(nose_n[1] / mouth_n[1]) if mouth_n[1] > 1e-6 else 0.0
    return Pose(yaw=float(nose_n[0]), pitch=pitch, roll_degrees=math.degrees(angle))
