"""Per-device token buckets: how often a device may ask the gateway for something costly."""

from __future__ import annotations

import time


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    __slots__ = ("at", "tokens")

    def __init__(self, burst: int, now: float) -> None:
        self.tokens = float(burst)
        self.at = now

    def take(self, rate: float, burst: int, now: float) -> bool:
        self.tokens = min(float(burst), self.tokens + (now - self.at) * rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class DeviceRateLimit:
    """One bucket per device (dropped when the device's session ends: bounded memory)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}

    def admit(self, device_id: str) -> bool:
        """Whether the device may have one more now."""
        now = time.monotonic()
        bucket = self._buckets.get(device_id)
        if bucket is None:
            bucket = self._buckets[device_id] = TokenBucket(self.burst, now)
        return bucket.take(self.rate, self.burst, now)

    def forget(self, device_id: str) -> None:
        self._buckets.pop(device_id, None)
