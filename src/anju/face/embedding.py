"""Five-point landmarks, alignment and the 128-d face embedding (dlib, models from
``face_recognition_models``: CC0). The 68-point landmark model in that package is trained on
iBUG 300-W, which is licensed for non-commercial use only, and is never loaded.
"""

from __future__ import annotations

import dlib
import numpy as np
from numpy.typing import NDArray

from anju.face.detector import Detection
from anju.face.image import RGBImage
from anju.face.packaged import FACE_EMBEDDING, LANDMARKS_5

CHIP_SIZE = 150  # the ResNet's input size
CHIP_PADDING = 0.25  # dlib's default for this model
Embedding = NDArray[np.float64]  # shape (128,)


class DlibFaceEmbedder:
    """Landmarks → aligned 150×150 chip → embedding. Models load once per instance."""

    def __init__(self) -> None:
        self._landmarks = dlib.shape_predictor(str(LANDMARKS_5.locate()))
        self._network = dlib.face_recognition_model_v1(str(FACE_EMBEDDING.locate()))

    def align(self, image: RGBImage, face: Detection) -> NDArray[np.uint8]:
        """The face chip: rotated, scaled and cropped on dlib's five landmarks."""
        box = dlib.rectangle(
            round(face.left), round(face.top), round(face.right), round(face.bottom)
        )
        shape = self._landmarks(image, box)
        chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        return np.asarray(chip, dtype=np.uint8)

    def embed(self, chip: NDArray[np.uint8]) -> Embedding:
        """The 128-d descriptor of an aligned chip."""
        return np.asarray(self._network.compute_face_descriptor(chip), dtype=np.float64)
