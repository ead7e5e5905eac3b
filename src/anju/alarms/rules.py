"""Alarm kinds (severity, zh-CN and English titles) and the lifecycle states."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from anju.errors import Conflict, InvalidInput
from anju.protocol.access import AlarmType


class AlarmStatus(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


OPEN = (AlarmStatus.ACTIVE, AlarmStatus.ACKNOWLEDGED)
#: Platform-raised kinds (locks raise the AlarmType kinds).
REPEATED_FAILURES = "repeated_failures"  # N denials at one lock within M seconds
SITE_REPEATED_FAILURES = "site_repeated_failures"  # … across the organisation's doors
ABNORMAL_GRANT = "abnormal_grant"  # mass grants, odd hours, self-grants (access domain)
REPORT_PARKED = "regulator_report_parked"  # the regulator refused a report (reporting domain)


@dataclass(frozen=True)
class AlarmKind:
    severity: Severity
    title_zh: str
    title_en: str
    from_lock: bool


KINDS: dict[str, AlarmKind] = {
    AlarmType.TAMPER: AlarmKind(Severity.CRITICAL, "门锁被撬或外壳被打开", "Lock tampered", True),
    AlarmType.FORCED_ENTRY: AlarmKind(Severity.CRITICAL, "门被强行打开", "Door forced open", True),
    AlarmType.WRONG_ATTEMPTS: AlarmKind(
        Severity.HIGH, "连续开锁失败，门锁已锁定", "Wrong attempts: lock locked out", True
    ),
    AlarmType.DOOR_LEFT_OPEN: AlarmKind(Severity.MEDIUM, "门未关好", "Door left open", True),
    AlarmType.LOW_BATTERY: AlarmKind(Severity.LOW, "门锁电量低", "Low battery", True),
    REPEATED_FAILURES: AlarmKind(
        Severity.HIGH, "同一门锁短时间内多次开锁失败", "Repeated failed unlocks at a lock", False
    ),
    SITE_REPEATED_FAILURES: AlarmKind(
        Severity.HIGH, "多处门锁短时间内多次开锁失败", "Repeated failed unlocks across doors", False
    ),
    ABNORMAL_GRANT: AlarmKind(Severity.HIGH, "异常授权", "Abnormal grant", False),
    REPORT_PARKED: AlarmKind(
        Severity.HIGH, "治安报送被拒收，已搁置", "Regulator report refused and parked", False
    ),
}

_SUBJECT = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_NOTE = 500


def kind_info(kind: str) -> AlarmKind:
    """The kind's table entry (``invalid_input`` for an unknown kind)."""
    info = KINDS.get(kind)
    if info is None:
        raise InvalidInput(
            f"未知告警类型 / unknown alarm kind {kind!r}", details={"known": sorted(KINDS)}
        )
    return info


def check_subject(subject: str | None) -> str | None:
    if subject is not None and not _SUBJECT.fullmatch(subject):
        raise InvalidInput("主体标识无效 / subject ids are [A-Za-z0-9_-]{1,64}")
    return subject


def check_note(note: str | None) -> str | None:
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(f"备注至多 {MAX_NOTE} 字 / a note has at most {MAX_NOTE} characters")
    return note


class AlarmStateConflict(Conflict):
    code = "alarm_state_conflict"
