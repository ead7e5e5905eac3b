"""Decode an uploaded or captured photo into pixels, in memory only, within strict limits.

The bytes are parsed from a ``BytesIO``: Pillow never sees a path and no decoder that shells out
or writes temporary files is allowed (only JPEG, PNG and WebP). The header is checked against the
pixel limit *before* decoding, so a decompression bomb is refused without being expanded.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from anju.face.reasons import FaceRefused, Reason

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
RGBImage = NDArray[np.uint8]  # height × width × 3, RGB


@dataclass(frozen=True)
class ImageLimits:
    """What an input photo may be."""

    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 24_000_000
    min_side: int = 64


DEFAULT_LIMITS = ImageLimits()


def decode_image(
    data: bytes, limits: ImageLimits = DEFAULT_LIMITS, *, what: str = "image"
) -> RGBImage:
    """RGB pixels of an encoded photo (EXIF orientation applied); ``FaceRefused`` otherwise."""
    if len(data) > limits.max_bytes:
        raise FaceRefused([Reason.FILE_TOO_LARGE], what=what)
    if not data:
        raise FaceRefused([Reason.NOT_AN_IMAGE], what=what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
                width, height = img.size
                if width * height > limits.max_pixels:
                    raise FaceRefused([Reason.TOO_MANY_PIXELS], what=what)
                if min(width, height) < limits.min_side:
                    raise FaceRefused([Reason.IMAGE_TOO_SMALL], what=what)
                img.load()
                upright = ImageOps.exif_transpose(img)
                pixels = np.asarray(upright.convert("RGB"), dtype=np.uint8)
    except FaceRefused:
        raise
    except UnidentifiedImageError:
        raise FaceRefused([_unidentified(data)], what=what) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FaceRefused([Reason.TOO_MANY_PIXELS], what=what) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        # Pillow reports a truncated or corrupt stream as OSError / SyntaxError / ValueError.
        raise FaceRefused([Reason.TRUNCATED_IMAGE], what=what) from None
    return np.ascontiguousarray(pixels)


_OTHER_IMAGE_MAGIC = (b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"\x00\x00\x01\x00", b"%!PS")


def _unidentified(data: bytes) -> Reason:
    """An image format we do not take, or not an image at all."""
    if data.startswith(_OTHER_IMAGE_MAGIC):
        return Reason.UNSUPPORTED_FORMAT
    return Reason.NOT_AN_IMAGE
