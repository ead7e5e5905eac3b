"""Clocks are injected, never read from globals, so tests can move time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        """Move forward by ``timedelta(**delta)``."""
        self._now += timedelta(**delta)
        return self._now


class OffsetClock:
    """The real clock moved forward by a chosen offset (a demonstration's "31 days later")."""

    def __init__(self) -> None:
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, **delta: float) -> datetime:
        """Jump forward by ``timedelta(**delta)``; time keeps running from there."""
        self._offset += timedelta(**delta)
        return self.now()

    def now_ms(self) -> int:
        """Milliseconds since the epoch (a device's clock reads this)."""
        return int(self.now().timestamp() * 1000)
