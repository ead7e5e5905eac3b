"""Clocks for tests that share time with another process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from anju.kit.clock import FixedClock


class WallClock(FixedClock):
    """The real time (as a child ``anju serve`` sees it), which a test may still move ahead."""

    def __init__(self) -> None:
        super().__init__()
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, **delta: float) -> datetime:
        self._offset += timedelta(**delta)
        return self.now()
