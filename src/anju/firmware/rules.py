"""The one place for firmware rollout vocabulary and rules: statuses, device states, limits.

Life of a rollout (docs/firmware.md)::

    draft ──start──▶ running ──pause / too many failures──▶ paused ──resume──▶ running
      │                 └──every stage started, every device finished──▶ completed
      └─────────────────┴──────────────cancel (draft, running, paused)──────────▶ cancelled

Life of one device in a rollout::

    pending ──its stage starts──▶ sent ──fw_state──▶ downloading ▶ verified ▶ updating ▶ updated
       │                           └──(any step) failed: the device's code, or the command's
       └──rollout cancelled──▶ cancelled              (no_ack, expired, unknown_command …)
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from enum import StrEnum

from anju.errors import Conflict, InvalidInput
from anju.protocol.firmware import REPORT_STATES


class RolloutStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class DeviceState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DOWNLOADING = "downloading"
    VERIFIED = "verified"
    UPDATING = "updating"
    UPDATED = "updated"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: What a device may report (anju.protocol.firmware.REPORT_STATES) as our states.
REPORTED: dict[str, DeviceState] = {name: DeviceState(name) for name in REPORT_STATES}

#: Operator actions: the statuses each may start from, and where it leads.
ACTIONS: dict[str, tuple[frozenset[RolloutStatus], RolloutStatus]] = {
    "start": (frozenset({RolloutStatus.DRAFT}), RolloutStatus.RUNNING),
    "pause": (frozenset({RolloutStatus.RUNNING}), RolloutStatus.PAUSED),
    "resume": (frozenset({RolloutStatus.PAUSED}), RolloutStatus.RUNNING),
    "cancel": (
        frozenset({RolloutStatus.DRAFT, RolloutStatus.RUNNING, RolloutStatus.PAUSED}),
        RolloutStatus.CANCELLED,
    ),
}
#: A device in a rollout of these statuses (and not finished there) is in no other rollout.
OPEN_ROLLOUTS = frozenset({RolloutStatus.DRAFT, RolloutStatus.RUNNING, RolloutStatus.PAUSED})
#: Rollouts whose devices may still fetch the image (a paused one lets downloads finish).
SERVING_ROLLOUTS = frozenset({RolloutStatus.RUNNING, RolloutStatus.PAUSED})
#: Device states in which the device is fetching chunks.
FETCHING = frozenset({DeviceState.SENT, DeviceState.DOWNLOADING})
FINISHED = frozenset({DeviceState.UPDATED, DeviceState.FAILED, DeviceState.CANCELLED})
#: Progress order of the states a device moves through (reports never move a device back).
PROGRESS: dict[str, int] = {
    DeviceState.PENDING: 0,
    DeviceState.SENT: 1,
    DeviceState.DOWNLOADING: 2,
    DeviceState.VERIFIED: 3,
    DeviceState.UPDATING: 4,
    DeviceState.UPDATED: 5,
}

# Why a rollout paused by itself (an operator's pause says "operator").
PAUSED_FAILURES = "failure_threshold"
PAUSED_STALLED = "below_success_threshold"
PAUSED_BY_OPERATOR = "operator"

COMMAND_NAME = "ota.update"
DEFAULT_STAGES = (1, 10, 50, 100)
MAX_STAGES = 10
DEFAULT_SUCCESS_PCT = 90
DEFAULT_FAILURE_PCT = 10
DEFAULT_COMMAND_TTL_SECONDS = 3 * 86_400
MAX_EXPLICIT_DEVICES = 1000
RESULT_CODE = re.compile(r"[a-z0-9_]{1,64}")


class FirmwareRefused(InvalidInput):
    """A package failed verification; ``details.reason`` is the protocol code (fw_*)."""

    code = "firmware_refused"


class PackageExists(Conflict):
    code = "package_exists"


class IllegalRolloutTransition(Conflict):
    code = "illegal_rollout_transition"


class NoEligibleDevices(InvalidInput):
    code = "no_eligible_devices"


def check_stages(stages: Sequence[int]) -> list[int]:
    """Cumulative percentages of the fleet: strictly increasing, 1–100, ending at 100."""
    values = list(stages)
    if (
        not 1 <= len(values) <= MAX_STAGES
        or any(not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 100 for v in values)
        or any(b <= a for a, b in itertools.pairwise(values))
        or values[-1] != 100
    ):
        raise InvalidInput(
            "阶段须为递增的百分比并以 100 结束 / stages: 1–10 increasing percentages ending at 100",
            details={"field": "stages"},
        )
    return values


def check_percent(value: int, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        raise InvalidInput(f"{field}: 0–100", details={"field": field})
    return value


def stage_of(position: int, total: int, stages: Sequence[int]) -> int:
    """The 1-based stage of the device at ``position`` (0-based) among ``total`` devices: the
    first stage whose cumulative share ceil(pct · total / 100) covers it."""
    for index, pct in enumerate(stages, start=1):
        if position < math.ceil(pct * total / 100):
            return index
    return len(stages)


def over_failure_threshold(failed: int, accepted: int, total: int, pct: int) -> bool:
    """More failures (beyond those the operator accepted on resume) than ``pct`` % of total."""
    return total > 0 and (failed - accepted) * 100 > pct * total


def meets_success_threshold(updated: int, accepted: int, total: int, pct: int) -> bool:
    """Updated devices (plus accepted failures) reach ``pct`` % of total (an empty stage does)."""
    return (updated + accepted) * 100 >= pct * total


def check_result_code(code: str | None) -> str | None:
    if code is not None and not RESULT_CODE.fullmatch(code):
        raise InvalidInput("结果码格式错误 / result codes: [a-z0-9_]{1,64}")
    return code
