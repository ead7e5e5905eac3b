"""The one place for access-control vocabulary and rules: person types and their limits,
statuses, delivery states, and the domain errors (docs/access.md).

Life of a credential on one lock (a row of ``access_deliveries``)::

    queued ──gateway sends──▶ sent ──signed receipt "installed"──▶ installed
      │                        ├──signed receipt "refused"──▶ refused(code)
      │                        └──command ended, no receipt──▶ failed ──reconcile──▶ queued
    (suspend, revoke, lost, expiry) ──▶ removing ──signed receipt "removed"──▶ removed

"installed" and "removed" come only from a receipt the lock signed with its SE key, never from
the plain command ack: an ack says the lock got the bytes, not that the credential works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from anju.errors import Conflict, Forbidden, InvalidInput
from anju.protocol.access import SUBJECT


class PersonType(StrEnum):
    OWNER = "owner"
    TENANT = "tenant"
    GUEST = "guest"
    VISITOR = "visitor"
    STAFF = "staff"


@dataclass(frozen=True)
class TypePolicy:
    """What a grant to a person type may be: end required, longest window, schedule required,
    and the usual length beyond which a grant is flagged as an anomaly."""

    end_required: bool
    longest: timedelta | None  # None: no limit
    schedule_required: bool
    norm: timedelta | None


DAY = timedelta(days=1)
POLICIES: dict[PersonType, TypePolicy] = {
    PersonType.OWNER: TypePolicy(False, None, False, None),
    # Until the lease or residence-permit end: an end is required.
    PersonType.TENANT: TypePolicy(True, 5 * 365 * DAY, False, 366 * DAY),
    # Until check-out.
    PersonType.GUEST: TypePolicy(True, 90 * DAY, False, 30 * DAY),
    PersonType.VISITOR: TypePolicy(True, DAY, False, 12 * timedelta(hours=1)),
    # By shift: a recurring schedule is required.
    PersonType.STAFF: TypePolicy(True, 366 * DAY, True, 184 * DAY),
}


class GrantStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


class CredentialStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"  # also: lost, replaced, expired (end_reason says which)


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    INSTALLED = "installed"
    REFUSED = "refused"
    FAILED = "failed"
    REMOVING = "removing"
    REMOVED = "removed"
    TOKEN = "token"  # noqa: S105 -- nothing to install: the lock verifies the eKey token itself


class FreezeReason(StrEnum):
    ARREARS = "arrears"
    VIOLATION = "violation"
    OTHER = "other"


#: Delivery states in which the lock holds, or is about to hold, the credential.
HELD = frozenset(
    {DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.INSTALLED, DeliveryState.FAILED}
)
#: Credential actions an operator may take and the kinds they apply to.
ACTIONS = ("suspend", "resume", "revoke", "lost", "replace")
#: How long access commands live in the outbox (the maximum: reconcile re-queues afterwards).
COMMAND_TTL_SECONDS = 7 * 24 * 3600
#: An eKey of a grant without end is valid this long (issue a new one after).
EKEY_LONGEST = 366 * DAY
MAX_DOORS = 500
NOTE = re.compile(r"[^\x00-\x1f]{0,200}")


class AccessConflict(Conflict):
    code = "access_conflict"


class PasscodeInUse(Conflict):
    code = "passcode_in_use"


class AccessFrozen(Conflict):
    code = "access_frozen"


class NotPermitted(Forbidden):
    code = "access_not_permitted"


def check_subject(subject_id: object) -> str:
    """A pseudonymous subject id (``[A-Za-z0-9_-]{1,64}``), or InvalidInput."""
    if not isinstance(subject_id, str) or not SUBJECT.fullmatch(subject_id):
        raise InvalidInput(
            "主体标识须为 1–64 个 A-Z a-z 0-9 _ - / subject id: [A-Za-z0-9_-]{1,64}",
            details={"field": "subject_id"},
        )
    return subject_id


def parse_person_type(value: str) -> PersonType:
    try:
        return PersonType(value)
    except ValueError:
        raise InvalidInput(
            f"未知人员类型 / unknown person type {value!r}",
            details={"field": "person_type", "known": [t.value for t in PersonType]},
        ) from None
