"""Why a face image or a liveness sequence was refused: stable codes, words a person can act on.

Codes are part of the API (JSON output, capture log, audit): they never change meaning. Every
reason carries zh-CN text first and English alongside, saying what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from anju.errors import InvalidInput


class Reason(StrEnum):
    """A refusal or quality reason."""

    # input
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TRUNCATED_IMAGE = "truncated_image"
    FILE_TOO_LARGE = "file_too_large"
    TOO_MANY_PIXELS = "too_many_pixels"
    IMAGE_TOO_SMALL = "image_too_small"
    # faces
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    FACE_TOO_SMALL = "face_too_small"
    FACE_CUT_OFF = "face_cut_off"
    POSE = "pose_not_frontal"
    BLURRY = "too_blurry"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    # liveness
    LIVENESS_CHALLENGE_UNKNOWN = "liveness_challenge_unknown"
    LIVENESS_CHALLENGE_EXPIRED = "liveness_challenge_expired"
    LIVENESS_CHALLENGE_USED = "liveness_challenge_used"
    LIVENESS_TOO_FEW_FRAMES = "liveness_too_few_frames"
    LIVENESS_TOO_MANY_FRAMES = "liveness_too_many_frames"
    LIVENESS_TOO_LONG = "liveness_too_long"
    LIVENESS_BAD_TIMING = "liveness_bad_timing"
    LIVENESS_REPEATED_FRAMES = "liveness_repeated_frames"
    LIVENESS_NO_NEUTRAL_START = "liveness_no_neutral_start"
    LIVENESS_NOT_PERFORMED = "liveness_not_performed"
    LIVENESS_WRONG_ORDER = "liveness_wrong_order"
    LIVENESS_STEP_TIMEOUT = "liveness_step_timeout"
    LIVENESS_FACE_CHANGED = "liveness_face_changed"


_TEXT: dict[Reason, tuple[str, str]] = {
    Reason.NOT_AN_IMAGE: (
        "文件不是图片，请上传 JPEG 或 PNG 照片",
        "not an image: send a JPEG or PNG photo",
    ),
    Reason.UNSUPPORTED_FORMAT: (
        "不支持的图片格式，请使用 JPEG、PNG 或 WebP",
        "unsupported image format: use JPEG, PNG or WebP",
    ),
    Reason.TRUNCATED_IMAGE: (
        "图片文件不完整或已损坏，请重新拍摄或重新上传",
        "the image file is truncated or damaged: take or upload it again",
    ),
    Reason.FILE_TOO_LARGE: (
        "图片文件过大，请压缩后重试",
        "the image file is too large: send a smaller (compressed) photo",
    ),
    Reason.TOO_MANY_PIXELS: (
        "图片分辨率过高，请缩小后重试",
        "the image has too many pixels: send a lower-resolution photo",
    ),
    Reason.IMAGE_TOO_SMALL: (
        "图片分辨率过低，请使用更清晰的照片",
        "the image is too small: use a higher-resolution photo",
    ),
    Reason.NO_FACE: (
        "未检测到人脸，请正对镜头并确保面部完整入镜",
        "no face found: face the camera with your whole face in the frame",
    ),
    Reason.MULTIPLE_FACES: (
        "检测到多张人脸，请确保画面中只有一人",
        "more than one face: make sure only one person is in the picture",
    ),
    Reason.FACE_TOO_SMALL: (
        "人脸太小，请靠近镜头",
        "the face is too small: move closer to the camera",
    ),
    Reason.FACE_CUT_OFF: (
        "人脸不完整，请将整张脸置于画面中央",
        "the face is cut off: centre your whole face in the picture",
    ),
    Reason.POSE: (
        "请正对镜头，不要侧脸、抬头或低头",
        "look straight at the camera: do not turn, raise or lower your head",
    ),
    Reason.BLURRY: (
        "图像模糊，请保持静止并对焦后重拍",
        "the image is blurry: hold still and let the camera focus",
    ),
    Reason.TOO_DARK: ("光线太暗，请到光线充足处重拍", "too dark: move to better light"),
    Reason.TOO_BRIGHT: (
        "光线过强或曝光过度，请避开强光重拍",
        "too bright or over-exposed: avoid strong light behind or on the face",
    ),
    Reason.LIVENESS_CHALLENGE_UNKNOWN: (
        "活体检测挑战无效，请重新开始",
        "unknown liveness challenge: start again",
    ),
    Reason.LIVENESS_CHALLENGE_EXPIRED: (
        "活体检测已超时，请重新开始",
        "the liveness challenge has expired: start again",
    ),
    Reason.LIVENESS_CHALLENGE_USED: (
        "该活体检测挑战已使用过，请重新开始",
        "this liveness challenge has already been used: start again",
    ),
    Reason.LIVENESS_TOO_FEW_FRAMES: (
        "视频帧数不足，请按提示完成全部动作",
        "too few frames: perform every requested movement on camera",
    ),
    Reason.LIVENESS_TOO_MANY_FRAMES: (
        "视频帧数过多，请缩短拍摄时间",
        "too many frames: keep the recording shorter",
    ),
    Reason.LIVENESS_TOO_LONG: (
        "动作用时过长，请在规定时间内完成",
        "the sequence took too long: complete the movements within the time limit",
    ),
    Reason.LIVENESS_BAD_TIMING: (
        "视频帧时间戳异常，请重新拍摄",
        "frame timestamps are out of order or too far apart: record again",
    ),
    Reason.LIVENESS_REPEATED_FRAMES: (
        "检测到重复画面（疑似静态图片或回放），请本人实时完成动作",
        "repeated frames (a still picture or a replay?): perform the movements live",
    ),
    Reason.LIVENESS_NO_NEUTRAL_START: (
        "请先正对镜头，再按提示做动作",
        "start by looking straight at the camera, then follow the prompts",
    ),
    Reason.LIVENESS_NOT_PERFORMED: (
        "未检测到要求的动作，请按提示转头或抬头低头",
        "the requested movement was not seen: turn or tilt your head as prompted",
    ),
    Reason.LIVENESS_WRONG_ORDER: (
        "动作顺序不正确，请按提示的顺序完成",
        "movements in the wrong order: follow the prompts in the order given",
    ),
    Reason.LIVENESS_STEP_TIMEOUT: (
        "某个动作用时过长，请跟随提示及时完成",
        "a movement took too long: follow each prompt promptly",
    ),
    Reason.LIVENESS_FACE_CHANGED: (
        "拍摄过程中人脸发生变化，请本人全程完成",
        "the face changed during the sequence: one person must complete it throughout",
    ),
}


@dataclass(frozen=True)
class ReasonText:
    """A reason with its words, ready for JSON."""

    code: Reason
    zh: str
    en: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": f"{self.zh} / {self.en}"}


def explain(reason: Reason) -> ReasonText:
    """The reason with its zh-CN and English text."""
    zh, en = _TEXT[reason]
    return ReasonText(reason, zh, en)


def explain_all(reasons: list[Reason]) -> list[dict[str, str]]:
    """JSON-ready reasons, in order."""
    return [explain(r).as_dict() for r in reasons]


class FaceRefused(InvalidInput):
    """The input cannot be used (no face, bad file, failed quality gate, failed liveness)."""

    code = "face_refused"

    def __init__(self, reasons: list[Reason], *, what: str = "image") -> None:
        if not reasons:
            raise ValueError("a refusal needs at least one reason")
        self.reasons = list(reasons)
        first = explain(reasons[0])
        details: dict[str, Any] = {"input": what, "reasons": explain_all(self.reasons)}
        super().__init__(f"{first.zh} / {first.en}", details=details)
