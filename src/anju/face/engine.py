"""The face engine: photo → checked face → embedding; two photos → 1:1 decision.

Pixels live only in local variables of these calls. Nothing here writes a file, logs an image or
keeps one after returning: the caller gets the decision, the distance and the reasons.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from anju.face.compare import MATCH_THRESHOLD, Comparison, compare_embeddings
from anju.face.detector import CenterFaceDetector, Detection
from anju.face.embedding import DlibFaceEmbedder, Embedding
from anju.face.image import DEFAULT_LIMITS, ImageLimits, RGBImage, decode_image
from anju.face.pose import Pose, estimate_pose
from anju.face.quality import (
    DEFAULT_QUALITY,
    QualityPolicy,
    face_count_reasons,
    geometry_reasons,
    pixel_reasons,
)
from anju.face.reasons import FaceRefused, Reason, explain_all


@dataclass(frozen=True)
class FaceSample:
    """One accepted face: where it is, its pose and its embedding (no pixels)."""

    face: Detection
    pose: Pose
    embedding: Embedding = field(repr=False)


@dataclass(frozen=True)
class Verification:
    """The outcome of a 1:1 comparison of a document photo with a live capture."""

    decision: str  # "match" | "no_match" | "refused"
    distance: float | None
    threshold: float
    reasons: dict[str, list[Reason]]  # per input ("document", "live"), empty when accepted

    @property
    def matched(self) -> bool:
        return self.decision == "match"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (CLI, HTTP): no image, no embedding."""
        return {
            "decision": self.decision,
            "distance": None if self.distance is None else round(self.distance, 4),
            "threshold": self.threshold,
            "reasons": {what: explain_all(r) for what, r in self.reasons.items() if r},
        }


class FaceEngine:
    """Detector and embedder loaded once; calls are serialised (one core, models not re-entrant)."""

    def __init__(
        self,
        *,
        limits: ImageLimits = DEFAULT_LIMITS,
        quality: QualityPolicy = DEFAULT_QUALITY,
        threshold: float = MATCH_THRESHOLD,
        detector: CenterFaceDetector | None = None,
        embedder: DlibFaceEmbedder | None = None,
    ) -> None:
        self.limits = limits
        self.quality = quality
        self.threshold = threshold
        self.detector = detector or CenterFaceDetector()
        self.embedder = embedder or DlibFaceEmbedder()
        self._lock = threading.Lock()

    # --- one photo -------------------------------------------------------------------------
    def sample(self, data: bytes, *, what: str = "image") -> FaceSample:
        """Decode, check and embed one photo; ``FaceRefused`` with the reasons otherwise."""
        return self.sample_pixels(decode_image(data, self.limits, what=what), what=what)

    def sample_pixels(self, image: RGBImage, *, what: str = "image") -> FaceSample:
        """Like :meth:`sample` for decoded pixels."""
        with self._lock:
            face, pose = self.locate(image, what=what)
            chip = self.embedder.align(image, face)
            reasons = pixel_reasons(chip, self.quality)
            if reasons:
                raise FaceRefused(reasons, what=what)
            return FaceSample(face, pose, self.embedder.embed(chip))

    def locate(self, image: RGBImage, *, what: str = "image") -> tuple[Detection, Pose]:
        """The one face of ``image`` and its pose, past the count, size, cut-off and pose gates."""
        detections = self.detector.detect(image)
        reasons = face_count_reasons(detections, self.quality)
        if reasons:
            raise FaceRefused(reasons, what=what)
        face = max(detections, key=lambda d: d.width)
        pose = estimate_pose(face)
        reasons = geometry_reasons(face, pose, image.shape, self.quality)
        if reasons:
            raise FaceRefused(reasons, what=what)
        return face, pose

    # --- 1:1 -------------------------------------------------------------------------------
    def verify(self, document: bytes, live: bytes) -> Verification:
        """Person-vs-document: both photos are checked; refused inputs give their reasons."""
        samples: dict[str, FaceSample] = {}
        reasons: dict[str, list[Reason]] = {"document": [], "live": []}
        for what, data in (("document", document), ("live", live)):
            try:
                samples[what] = self.sample(data, what=what)
            except FaceRefused as refused:
                reasons[what] = refused.reasons
        if len(samples) < 2:
            return Verification("refused", None, self.threshold, reasons)
        return self.decide(samples["document"].embedding, samples["live"].embedding)

    def decide(self, reference: Embedding, probe: Embedding) -> Verification:
        """The decision for two embeddings."""
        comparison: Comparison = compare_embeddings(reference, probe, self.threshold)
        decision = "match" if comparison.match else "no_match"
        return Verification(
            decision, comparison.distance, self.threshold, {"document": [], "live": []}
        )
