"""``anju serve``: run the platform."""

from __future__ import annotations

from anju.cli.common import DataDirOption


def serve(data_dir: DataDirOption = None) -> None:
    """Start the platform."""
    raise SystemExit("not yet wired")
