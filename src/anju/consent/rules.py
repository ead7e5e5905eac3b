"""The consent vocabulary shared by service and API: statuses, the check's answer, typed
errors with stable codes, and input parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from anju.consent.models import ConsentEvent
from anju.consent.notices import Channel, ConsentAction
from anju.errors import Conflict, InvalidInput, NotFound

SUBJECT_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class UnknownNoticeVersion(NotFound):
    code = "unknown_notice_version"


class NoticeOutdated(Conflict):
    code = "notice_outdated"


class NoticeUnchanged(Conflict):
    code = "notice_unchanged"


class PurposeNotInNotice(InvalidInput):
    code = "purpose_not_in_notice"


class NothingToWithdraw(Conflict):
    code = "nothing_to_withdraw"


class ConcurrentChange(Conflict):
    code = "concurrent_change"


def concurrent_change() -> ConcurrentChange:
    return ConcurrentChange(
        "另一操作同时修改了该记录，请重试 / another change was made at the same time; try again"
    )


class ConsentStatus(StrEnum):
    """The answer of the consent check, per purpose."""

    CONSENTED = "consented"  # given under the notice version in force
    STALE = "stale"  # given under an earlier version: not enough for new processing
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    NOT_ASKED = "not_asked"
    NO_NOTICE = "no_notice"  # no notice in force covers the purpose


# When several notices cover a purpose, the worst answer wins.
PRECEDENCE = [
    ConsentStatus.WITHDRAWN,
    ConsentStatus.REFUSED,
    ConsentStatus.STALE,
    ConsentStatus.NOT_ASKED,
    ConsentStatus.CONSENTED,
]


@dataclass(frozen=True)
class NoticeAnswer:
    kind: str
    version: int
    required: bool
    status: ConsentStatus
    consented_version: int | None


@dataclass(frozen=True)
class ConsentCheck:
    """May ``purpose`` be used for ``subject_id`` now, and why (per notice covering it)."""

    subject_id: str
    purpose: str
    category: str | None
    status: ConsentStatus
    notices: list[NoticeAnswer] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.status is ConsentStatus.CONSENTED


def check_subject_id(subject_id: str) -> str:
    """The subject id if it is an opaque pseudonym (``[A-Za-z0-9_-]``, 1–64), else InvalidInput."""
    if not isinstance(subject_id, str) or not SUBJECT_PATTERN.match(subject_id):
        raise InvalidInput(
            "主体标识须为 1–64 个字母、数字、_ 或 - / a subject id is 1–64 of A-Z a-z 0-9 _ -",
            details={"field": "subject_id"},
        )
    return subject_id


def parse_action(value: str) -> ConsentAction:
    try:
        return ConsentAction(value)
    except ValueError:
        raise InvalidInput(
            f"未知同意动作 / unknown consent action {value[:20]!r}",
            details={"known": [a.value for a in ConsentAction]},
        ) from None


def parse_channel(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise InvalidInput(
            f"未知渠道 / unknown channel {value[:20]!r}",
            details={"known": [c.value for c in Channel]},
        ) from None


def status_of(last: ConsentEvent | None, current_version: int) -> ConsentStatus:
    if last is None:
        return ConsentStatus.NOT_ASKED
    if last.action == ConsentAction.WITHDRAWN:
        return ConsentStatus.WITHDRAWN
    if last.action == ConsentAction.REFUSED:
        return ConsentStatus.REFUSED
    return (
        ConsentStatus.CONSENTED if last.notice_version == current_version else ConsentStatus.STALE
    )
