"""Simulated power loss for device storage: kill a write at a chosen system call, tear a file.

``power_cut_at(n)`` replaces the ``os`` functions device storage uses; the n-th call (0-based)
raises :class:`PowerLoss` instead of running — a killed ``os.write`` first writes half its bytes.
With ``only``, just the calls on matching files count and can be cut (the rest of the process —
the gateway, the database, other devices — runs untouched), so a firmware can lose power in the
middle of one of its own writes while everything around it keeps going. ``damage`` then leaves a
file the way a torn, unsynced write can.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class PowerLoss(BaseException):
    """The process dies here (not an Exception: nothing in the code under test may catch it)."""


_PATCHED = ("open", "write", "fsync", "close", "replace", "ftruncate", "lseek", "truncate")
_BY_FD = frozenset({"write", "fsync", "close", "ftruncate", "lseek"})


@dataclass
class PowerCut:
    """What happened under :func:`power_cut_at`: the counted calls and whether power failed."""

    calls: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)  # the file each counted call was on
    fired: bool = False

    @property
    def path(self) -> Path | None:
        """The file being written when the power failed."""
        return self.paths[-1] if self.fired else None


@contextlib.contextmanager
def power_cut_at(
    call: int,
    *,
    partial: bool = True,
    only: Callable[[Path], bool] | None = None,
    on_cut: Callable[[], None] | None = None,
) -> Iterator[PowerCut]:
    """Kill the process at the ``call``-th counted file-system call (0-based).

    ``only``: count only calls on files it accepts (default: every call). ``on_cut`` runs just
    before :class:`PowerLoss` is raised (e.g. to drop the device's network at the same instant).
    """
    cut = PowerCut()
    originals: dict[str, Callable[..., Any]] = {name: getattr(os, name) for name in _PATCHED}
    fds: dict[int, Path] = {}

    def target(name: str, args: tuple[Any, ...]) -> Path | None:
        """The file a call works on, if it is one we count."""
        if name in _BY_FD:
            path = fds.get(args[0]) if only is not None else Path(f"fd:{args[0]}")
        elif name == "replace":
            candidates = [Path(args[0]), Path(args[1])]
            path = next((p for p in candidates if only is None or only(p)), None)
        else:  # open, truncate: a path
            path = Path(args[0]) if isinstance(args[0], str | os.PathLike) else None
        if path is None or (only is not None and name not in _BY_FD and not only(path)):
            return None
        return path

    def wrap(name: str) -> Callable[..., Any]:
        def fn(*args: Any, **kwargs: Any) -> Any:
            path = target(name, args)
            if path is None:
                return originals[name](*args, **kwargs)
            cut.calls.append(name)
            cut.paths.append(path)
            if len(cut.calls) - 1 == call:
                if name == "write" and partial:
                    fd, data = args
                    originals["write"](fd, bytes(data[: len(data) // 2]))
                cut.fired = True
                if on_cut is not None:
                    on_cut()
                raise PowerLoss
            result = originals[name](*args, **kwargs)
            if name == "open" and only is not None:
                fds[result] = path
            elif name == "close":
                fds.pop(args[0], None)
            return result

        return fn

    try:
        for name in _PATCHED:
            setattr(os, name, wrap(name))
        yield cut
    finally:
        for name, original in originals.items():
            setattr(os, name, original)


def damage(path: Path, how: str, at: float) -> None:
    """Damage a file the way a torn write can leave it."""
    if not path.exists():
        return
    data = bytearray(path.read_bytes())
    cut = int(len(data) * at)
    if how == "truncate":
        data = data[:cut]
    elif how == "zero-tail":
        data[cut:] = bytes(len(data) - cut)
    elif how == "garbage-tail":
        data += os.urandom(7)
    elif how == "flip" and data:
        data[min(cut, len(data) - 1)] ^= 0x40
    path.write_bytes(bytes(data))
