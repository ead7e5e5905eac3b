"""Per-device refusals in a sliding window: when a device crosses the alarm threshold."""

from __future__ import annotations

from collections import Counter, deque


class FailureTracker:
    """Per-device refusals in a sliding window; says when a device crosses the threshold."""

    def __init__(self, threshold: int, window_ms: int) -> None:
        self.threshold = threshold
        self.window_ms = window_ms
        self.by_device: dict[str, Counter[str]] = {}
        self._recent: dict[str, deque[tuple[int, str]]] = {}

    def add(self, device_id: str, reason: str, now_ms: int) -> Counter[str] | None:
        """Count one refusal; the reasons in the window when the threshold is reached."""
        self.by_device.setdefault(device_id, Counter())[reason] += 1
        recent = self._recent.setdefault(device_id, deque())
        recent.append((now_ms, reason))
        while recent and recent[0][0] <= now_ms - self.window_ms:
            recent.popleft()
        if len(recent) < self.threshold:
            return None
        reasons = Counter(r for _, r in recent)
        recent.clear()  # the next alert needs a fresh series of failures
        return reasons

    def forget_idle(self, now_ms: int) -> None:
        """Drop windows with nothing recent (bounded memory)."""
        for device_id in [
            d for d, q in self._recent.items() if not q or q[-1][0] <= now_ms - self.window_ms
        ]:
            del self._recent[device_id]
