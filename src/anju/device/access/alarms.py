"""Lock alarms from its sensors (R2; docs/device-sdk.md, "Alarms").

Inputs are methods the hardware layer (here: the simulator or a test) calls: the tamper switch,
the battery gauge, the door sensor, and :meth:`AlarmMonitor.poll` on a timer. Each alarm is
raised once (``alarm.raised``) and cleared once its condition ends (``alarm.cleared``); which
alarms are active, the door's state and the battery flag are durable, so a power cycle neither
repeats nor forgets an alarm.

- tamper: the casing switch opened (pried) — cleared when it closes again;
- low_battery: below ``low_battery_percent`` — cleared at or above ``battery_ok_percent``
  (hysteresis, so a gauge wobbling at the threshold does not flood the platform);
- door_left_open: open longer than ``door_open_s`` — cleared when it closes;
- forced_entry: the door opened while the bolt was locked — cleared when it closes;
- wrong_attempts: raised by the lockout, cleared by the next granted unlock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anju.device.access.records import RecordSigner
from anju.device.storage import SlotStore
from anju.protocol.access import AlarmType
from anju.protocol.messages import canonical_json


@dataclass(frozen=True)
class AlarmPolicy:
    """Alarm thresholds."""

    low_battery_percent: int = 20
    battery_ok_percent: int = 30
    door_open_s: int = 60


class AlarmMonitor:
    """Turns sensor inputs into signed alarm records."""

    def __init__(
        self,
        store: SlotStore,
        records: RecordSigner,
        *,
        policy: AlarmPolicy,
        now_ms: Callable[[], int],
        is_locked: Callable[[], bool],
        relock: Callable[[], None],
    ) -> None:
        self._store = store
        self._records = records
        self.policy = policy
        self._now = now_ms
        self._is_locked = is_locked
        self._relock = relock
        self.active: set[AlarmType] = set()
        self.door_open_since: int | None = None  # ms, while the door sensor reports open
        raw = store.read()
        if raw is not None:
            doc = json.loads(raw)
            self.active = {AlarmType(a) for a in doc["active"]}
            self.door_open_since = doc["door_open_since"]

    def _save(self) -> None:
        doc = {"active": sorted(self.active), "door_open_since": self.door_open_since}
        self._store.write(canonical_json(doc))

    def raise_alarm(self, alarm: AlarmType, detail: dict[str, Any] | None = None) -> bool:
        """Raise ``alarm`` unless it is active already; True if it was raised now."""
        if alarm in self.active:
            return False
        self.active.add(alarm)
        self._save()  # durable first: a power cut after this never raises it twice
        self._records.alarm(alarm, raised=True, detail=detail)
        return True

    def clear_alarm(self, alarm: AlarmType, detail: dict[str, Any] | None = None) -> bool:
        """Clear ``alarm`` if active; True if it was cleared now."""
        if alarm not in self.active:
            return False
        self.active.discard(alarm)
        self._save()
        self._records.alarm(alarm, raised=False, detail=detail)
        return True

    # --- sensor inputs ---------------------------------------------------------------------
    def tamper(self, open_: bool) -> None:
        """The tamper switch changed: the casing is open (pried) or closed again."""
        if open_:
            self.raise_alarm(AlarmType.TAMPER, {"sensor": "casing"})
        else:
            self.clear_alarm(AlarmType.TAMPER, {"sensor": "casing"})

    def battery(self, percent: int) -> None:
        """A battery gauge reading (0–100)."""
        if percent < self.policy.low_battery_percent:
            self.raise_alarm(AlarmType.LOW_BATTERY, {"percent": percent})
        elif percent >= self.policy.battery_ok_percent:
            self.clear_alarm(AlarmType.LOW_BATTERY, {"percent": percent})

    def door_opened(self) -> None:
        """The door sensor reports open."""
        if self.door_open_since is not None:
            return
        self.door_open_since = self._now()
        self._save()
        if self._is_locked():
            self.raise_alarm(AlarmType.FORCED_ENTRY, {"door": "opened_while_locked"})

    def door_closed(self) -> None:
        """The door sensor reports closed: end door alarms and throw the bolt again."""
        if self.door_open_since is None:
            return
        self.door_open_since = None
        self._save()
        self.clear_alarm(AlarmType.DOOR_LEFT_OPEN, {"door": "closed"})
        self.clear_alarm(AlarmType.FORCED_ENTRY, {"door": "closed"})
        if not self._is_locked():
            self._relock()

    def poll(self) -> None:
        """Timer tick: raise door_left_open once the door has been open too long."""
        since = self.door_open_since
        if since is not None and self._now() - since >= self.policy.door_open_s * 1000:
            self.raise_alarm(AlarmType.DOOR_LEFT_OPEN, {"open_s": (self._now() - since) // 1000})
