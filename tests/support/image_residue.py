"""Proof that face images (and what is derived from them) leave no residue.

Three independent checks, used together by the biometrics tests:

1. :class:`FileWriteWatch` — a Python audit hook (PEP 578) records every file opened for
   writing, every ``tempfile`` creation and every ``shutil`` copy while it is active, in any
   thread (the engine runs in a worker thread). Native code that bypasses Python (the model
   libraries) is covered by 2.
2. :func:`scan_for_residue` — byte patterns of the inputs (slices of the encoded file, rows of
   the decoded pixels, the embedding's floats, the template's bits) searched, raw and as hex and
   base64, in files: a private temporary directory, the data directory, the database storage.
3. Captured log output searched for the same patterns.
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


@dataclass
class FileWriteWatch:
    """File writes seen by the audit hook while :func:`watch_file_writes` is active."""

    events: list[tuple[str, str]] = field(default_factory=list)
    active: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode, flags = ([*list(args), None, None, None])[:3]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writes:
                self._add(event, str(path))
        elif event.startswith(("tempfile.", "shutil.copy", "os.rename", "os.link")):
            self._add(event, repr(args)[:200])

    def _add(self, event: str, what: str) -> None:
        with self.lock:
            self.events.append((event, what))


_WATCH = FileWriteWatch()
_installed = False


@contextmanager
def watch_file_writes() -> Iterator[FileWriteWatch]:
    """Record file writes (any thread) for the duration of the block."""
    global _installed
    if not _installed:
        sys.addaudithook(_WATCH._hook)  # audit hooks cannot be removed; it is gated by .active
        _installed = True
    _WATCH.events.clear()
    _WATCH.active = True
    try:
        yield _WATCH
    finally:
        _WATCH.active = False


def residue_patterns(
    encoded: bytes, pixels: np.ndarray | None = None, extra: dict[str, bytes] | None = None
) -> dict[str, bytes]:
    """Byte strings that would betray the image: file slices, pixel rows, given extras."""
    patterns: dict[str, bytes] = {}
    for i, at in enumerate((len(encoded) // 3, len(encoded) // 2, 2 * len(encoded) // 3)):
        patterns[f"file[{i}]"] = encoded[at : at + 32]
    if pixels is not None:
        patterns.update(pixel_patterns(pixels))
    patterns.update(extra or {})
    return patterns


def pixel_patterns(pixels: np.ndarray, name: str = "pixels") -> dict[str, bytes]:
    """Runs of decoded pixels (two rows through the middle) that would betray the image."""
    patterns: dict[str, bytes] = {}
    height, width = pixels.shape[:2]
    for i, row in enumerate((height // 3, height // 2)):
        line = np.ascontiguousarray(pixels[row, width // 3 : width // 3 + 16]).tobytes()
        if len(set(line)) > 8:  # a flat row would match anything
            patterns[f"{name}[{i}]"] = line
    return patterns


def _forms(pattern: bytes) -> list[tuple[str, bytes]]:
    return [
        ("raw", pattern),
        ("hex", pattern.hex().encode()),
        ("base64", base64.b64encode(pattern)[:40]),
    ]


def find_residue(data: bytes, patterns: dict[str, bytes]) -> list[str]:
    """Names (and encodings) of the patterns found in ``data``."""
    return [
        f"{name}:{form}"
        for name, pattern in patterns.items()
        for form, needle in _forms(pattern)
        if needle in data
    ]


def scan_for_residue(paths: Iterable[Path], patterns: dict[str, bytes]) -> list[str]:
    """Every file under ``paths`` (recursively) holding one of the patterns."""
    hits: list[str] = []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            hits += [f"{file}: {h}" for h in find_residue(file.read_bytes(), patterns)]
    return hits


def private_tempdir(tmp_path: Path, monkeypatch: Any) -> Path:
    """An empty directory that ``tempfile`` and child processes use (``TMPDIR``) for the rest
    of the test: a temporary file made by any code under test lands there, where it is seen."""
    private = tmp_path / "private-tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    return private
