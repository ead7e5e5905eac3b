"""Wrong-attempt lockout, durable across power cycles (docs/device-sdk.md, "Lockout").

``threshold`` consecutive wrong attempts (of any method) lock every credential out for a window
that doubles with each repeated lockout up to a cap; a granted unlock resets both the counter
and the doubling. The counter is written to sealed storage *before* the attempt's verdict is
returned, so pulling the battery between guesses does not reset it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from anju.device.storage import SlotStore
from anju.protocol.messages import canonical_json


@dataclass(frozen=True)
class LockoutPolicy:
    """How many wrong attempts lock out, and for how long."""

    threshold: int = 5
    window_s: int = 300
    max_window_s: int = 3600


class Lockout:
    """Counts consecutive wrong attempts and holds the lockout window."""

    def __init__(self, store: SlotStore, policy: LockoutPolicy) -> None:
        self._store = store
        self.policy = policy
        self.failures = 0  # consecutive wrong attempts since the last success or lockout
        self.lockouts = 0  # lockouts since the last success (doubles the window)
        self.until_ms = 0  # refused before this instant
        raw = store.read()
        if raw is not None:
            doc = json.loads(raw)
            self.failures, self.lockouts = int(doc["failures"]), int(doc["lockouts"])
            self.until_ms = int(doc["until"])

    def _save(self) -> None:
        doc = {"failures": self.failures, "lockouts": self.lockouts, "until": self.until_ms}
        self._store.write(canonical_json(doc))

    def locked_out(self, now_ms: int) -> bool:
        """Whether every attempt is refused at ``now_ms``."""
        return now_ms < self.until_ms

    def wrong_attempt(self, now_ms: int) -> bool:
        """Count a wrong attempt durably; True when it starts a lockout window."""
        self.failures += 1
        started = self.failures >= self.policy.threshold
        if started:
            window_s = min(self.policy.window_s << self.lockouts, self.policy.max_window_s)
            self.until_ms = now_ms + window_s * 1000
            self.lockouts += 1
            self.failures = 0
        self._save()
        return started

    def success(self) -> None:
        """A granted unlock: forget the failures and the doubling."""
        if self.failures or self.lockouts or self.until_ms:
            self.failures = self.lockouts = self.until_ms = 0
            self._save()
