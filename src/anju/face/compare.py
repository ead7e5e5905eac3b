"""Comparing two embeddings, and the calibrated decision threshold.

The dlib ResNet is trained so that two photos of one person lie closer than 0.6 (Euclidean) and
reports 99.38 % on LFW at that threshold. On the package photos available to us and their
derivatives (docs/biometrics.md, "Calibration") genuine pairs measured 0.04–0.45 and impostor
pairs 0.64–0.93, so 0.6 sits in the gap; the data is far too small to estimate error rates, and
the model's own figure stands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anju.face.embedding import Embedding

#: The decision threshold on Euclidean distance (match when distance <= threshold).
MATCH_THRESHOLD = 0.6


@dataclass(frozen=True)
class Comparison:
    distance: float
    threshold: float

    @property
    def match(self) -> bool:
        return self.distance <= self.threshold


def compare_embeddings(
    a: Embedding, b: Embedding, threshold: float = MATCH_THRESHOLD
) -> Comparison:
    """Euclidean distance of two embeddings and the decision at ``threshold``."""
    if a.shape != b.shape:
        raise ValueError("embeddings of different sizes")
    return Comparison(float(np.linalg.norm(a - b)), threshold)
