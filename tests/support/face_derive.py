"""Derived test photos, made in memory from the package photos (tests/support/face_images.py)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter


def load(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def jpeg(data: bytes, quality: int) -> bytes:
    return encode(load(data), "JPEG", quality=quality)


def scaled(data: bytes, factor: float) -> bytes:
    img = load(data)
    size = (max(1, round(img.width * factor)), max(1, round(img.height * factor)))
    return encode(img.resize(size, Image.Resampling.LANCZOS), "PNG")


def fit(data: bytes, width: int, height: int) -> bytes:
    """The photo letterboxed into width × height (for 640×480 timings)."""
    img = load(data)
    img.thumbnail((width, height), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (width, height), (90, 90, 90))
    canvas.paste(img, ((width - img.width) // 2, (height - img.height) // 2))
    return encode(canvas, "JPEG", quality=92)


def blurred(data: bytes, radius_fraction: float) -> bytes:
    img = load(data)
    return encode(img.filter(ImageFilter.GaussianBlur(radius_fraction * img.width)), "PNG")


def brightness(data: bytes, factor: float) -> bytes:
    return encode(ImageEnhance.Brightness(load(data)).enhance(factor), "PNG")


def rotated(data: bytes, degrees: float) -> bytes:
    return encode(
        load(data).rotate(degrees, resample=Image.Resampling.BILINEAR, expand=True), "PNG"
    )


def crop(data: bytes, left: float, top: float, right: float, bottom: float) -> bytes:
    """Crop by fractions of the width/height."""
    img = load(data)
    box = (
        round(left * img.width),
        round(top * img.height),
        round(right * img.width),
        round(bottom * img.height),
    )
    return encode(img.crop(box), "PNG")


def side_by_side(a: bytes, b: bytes) -> bytes:
    left, right = load(a), load(b)
    height = min(left.height, right.height)
    left = left.resize((round(left.width * height / left.height), height))
    right = right.resize((round(right.width * height / right.height), height))
    canvas = Image.new("RGB", (left.width + right.width, height))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    return encode(canvas, "JPEG", quality=90)


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(load(data))
