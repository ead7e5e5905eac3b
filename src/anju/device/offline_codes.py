"""The lock's side of offline passcodes: its revocation epoch, revoked serials and used one-time
codes, and the check of a typed code (docs/offline-passcodes.md).

The firmware calls :meth:`OfflineCodeBook.check` for a typed code and, whenever the verdict says
``changed``, seals :meth:`OfflineCodeBook.to_dict` to storage *before* it opens the door, so a
power cut cannot make a one-time code usable twice. Online, it applies the platform's
``access.revoke`` command with :meth:`~OfflineCodeBook.apply_epoch` and
:meth:`~OfflineCodeBook.revoke`. Not thread-safe: the firmware checks one code at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from anju.errors import AnjuError, IntegrityError, InvalidInput
from anju.protocol.offline_passcode import (
    DEFAULT_TOLERANCE,
    EPOCH_HINDSIGHT,
    EPOCH_LOOKAHEAD,
    MAX_EPOCH,
    MAX_TOLERANCE,
    OFFLINE_PASSCODE_LABEL,
    SERIAL_LIMIT,
    OfflineClear,
    OfflineGrant,
    OfflineKind,
    Prf,
    decode_offline_passcode,
    is_code_shaped,
    seconds_since_base,
)

if TYPE_CHECKING:
    from anju.device.secure_element import SoftwareSecureElement

#: Bounds of the book's memory (each entry a few bytes: at most ~6 KB in all).
MAX_REVOKED = 512  # revoked (epoch, serial) pairs of the current and later epochs
MAX_USED = 256  # one-time codes used and not yet past their window
STATE_VERSION = 1

#: Why a code is refused; the same codes as the lock's unlock records (protocol.access.REASONS).
REFUSALS = (
    "malformed",  # not 10, 12, 14 or 16 ASCII digits
    "unknown_credential",  # not a code of this lock
    "not_yet_valid",
    "expired",
    "outside_schedule",
    "revoked",  # its serial is on the revocation list
    "epoch_revoked",  # issued before the lock's current epoch
    "already_used",  # a one-time code used before
    "store_full",  # the book's bounded memory is full
)


class OfflineBookFull(AnjuError):
    """The revocation list is full: advance the epoch instead (it empties the list)."""

    status, code = 409, "offline_book_full"


class OfflineOutcome(StrEnum):
    """What a typed code does."""

    OPEN = "open"  # open the door
    CLEARED = "cleared"  # a clear code: nothing opens, the lock's epoch or list changed
    REFUSED = "refused"


@dataclass(frozen=True)
class OfflineVerdict:
    """The result of :meth:`OfflineCodeBook.check`.

    ``grant``: the code's grant when it opens, or when it was recognised but refused;
    ``clear``: the instruction of a clear code; ``changed``: the book must be saved.
    """

    outcome: OfflineOutcome
    reason: str | None = None
    grant: OfflineGrant | None = None
    clear: OfflineClear | None = None
    changed: bool = False

    @property
    def accepted(self) -> bool:
        """Whether the door opens."""
        return self.outcome is OfflineOutcome.OPEN


def _refused(reason: str, grant: OfflineGrant | None = None) -> OfflineVerdict:
    return OfflineVerdict(OfflineOutcome.REFUSED, reason, grant=grant)


def secure_element_prf(se: SoftwareSecureElement) -> Prf:
    """The lock's PRF: HMAC inside its secure element under the offline passcode label."""
    return lambda data: se.hmac(OFFLINE_PASSCODE_LABEL, data)


class OfflineCodeBook:
    """A lock's offline passcode state and checker (``prf`` is its SE's PRF)."""

    def __init__(
        self,
        prf: Prf,
        *,
        epoch: int = 0,
        tolerance: timedelta = DEFAULT_TOLERANCE,
        max_revoked: int = MAX_REVOKED,
        max_used: int = MAX_USED,
    ) -> None:
        self._prf = prf
        self._epoch = _bounded(epoch, "epoch", MAX_EPOCH)
        self._tolerance = tolerance
        self._max_revoked = max_revoked
        self._max_used = max_used
        self._revoked: set[tuple[int, int]] = set()
        self._used: dict[tuple[int, int], int] = {}  # (epoch, serial) -> end, hours from BASE
        if not timedelta(0) <= tolerance <= MAX_TOLERANCE or max_revoked < 1 or max_used < 1:
            raise InvalidInput("tolerance must be 0–30 minutes and the bounds positive")

    @property
    def epoch(self) -> int:
        """The lock's revocation epoch: codes of older epochs are refused."""
        return self._epoch

    @property
    def revoked(self) -> frozenset[tuple[int, int]]:
        """Revoked (epoch, serial) pairs."""
        return frozenset(self._revoked)

    # -- the keypad ---------------------------------------------------------------------------
    def check(self, code: str, now: datetime) -> OfflineVerdict:
        """Check a typed code at the lock's time ``now``: open, apply a clear code, or refuse
        with a reason of :data:`REFUSALS`."""
        t = seconds_since_base(now)
        if not is_code_shaped(code):
            return _refused("malformed")
        self._forget_used(t)
        first: OfflineVerdict | None = None
        current = self._epoch
        ahead = range(current, min(current + EPOCH_LOOKAHEAD, MAX_EPOCH) + 1)
        behind = range(current - 1, max(current - EPOCH_HINDSIGHT, 0) - 1, -1)
        for epoch in (*ahead, *behind):
            if first is not None and epoch < current:
                break  # older epochs would only explain a refusal we already have
            item = decode_offline_passcode(self._prf, code, epoch=epoch)
            if item is None:
                continue
            if isinstance(item, OfflineClear):
                return self._apply_clear(item)
            verdict = self._judge(item, now)
            if verdict.accepted:
                return verdict
            first = first or verdict
        return first or _refused("unknown_credential")

    def _judge(self, grant: OfflineGrant, now: datetime) -> OfflineVerdict:
        if grant.epoch < self._epoch:
            return _refused("epoch_revoked", grant)
        key = (grant.epoch, grant.serial)
        if key in self._revoked:
            return _refused("revoked", grant)
        reason = grant.admits(now, self._tolerance)
        if reason is not None:
            return _refused(reason, grant)
        if grant.kind is OfflineKind.ONE_TIME:
            if key in self._used:
                return _refused("already_used", grant)
            if len(self._used) >= self._max_used:
                return _refused("store_full", grant)
            assert grant.valid_until is not None
            self._used[key] = seconds_since_base(grant.valid_until) // 3600
        changed = grant.kind is OfflineKind.ONE_TIME
        if grant.epoch > self._epoch:  # a newer epoch's code: the platform has moved on
            changed |= self.apply_epoch(grant.epoch)
        return OfflineVerdict(OfflineOutcome.OPEN, grant=grant, changed=changed)

    def _apply_clear(self, clear: OfflineClear) -> OfflineVerdict:
        changed = False
        if clear.new_epoch is not None:
            changed = self.apply_epoch(clear.new_epoch)
        elif clear.epoch >= self._epoch:
            assert clear.revoke_serial is not None
            try:
                changed = self.revoke([clear.revoke_serial], epoch=clear.epoch)
            except OfflineBookFull:
                return _refused("store_full")
        return OfflineVerdict(OfflineOutcome.CLEARED, clear=clear, changed=changed)

    def _forget_used(self, t: int) -> None:
        """Drop used one-time codes whose window (and tolerance) has passed."""
        tolerance = self._tolerance // timedelta(seconds=1)
        for key, end in list(self._used.items()):
            if t >= end * 3600 + tolerance:
                del self._used[key]

    # -- online -------------------------------------------------------------------------------
    def apply_epoch(self, epoch: int) -> bool:
        """Move to ``epoch`` if it is newer (never back); True when the book changed."""
        _bounded(epoch, "epoch", MAX_EPOCH)
        if epoch <= self._epoch:
            return False
        self._epoch = epoch
        self._revoked = {entry for entry in self._revoked if entry[0] >= epoch}
        self._used = {key: end for key, end in self._used.items() if key[0] >= epoch}
        return True

    def revoke(
        self, serials: Iterable[int], *, epoch: int | None = None, replace: bool = False
    ) -> bool:
        """Revoke ``serials`` of ``epoch`` (default: the current one); with ``replace`` they
        become that epoch's whole list (the platform drops codes that have expired). True when
        the book changed; OfflineBookFull (and no change) past :data:`MAX_REVOKED`."""
        epoch = self._epoch if epoch is None else _bounded(epoch, "epoch", MAX_EPOCH)
        entries = {(epoch, _bounded(s, "serial", SERIAL_LIMIT - 1)) for s in serials}
        if epoch < self._epoch:
            return False
        kept = {entry for entry in self._revoked if not replace or entry[0] != epoch}
        updated = kept | entries
        if len(updated) > self._max_revoked:
            raise OfflineBookFull(
                "离线密码吊销表已满 / the offline revocation list is full: advance the epoch",
                details={"limit": self._max_revoked},
            )
        if updated == self._revoked:
            return False
        self._revoked = updated
        return True

    # -- durable state ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The state to seal in storage (JSON-ready, canonical order)."""
        return {
            "version": STATE_VERSION,
            "epoch": self._epoch,
            "revoked": [list(entry) for entry in sorted(self._revoked)],
            "used": [[e, s, end] for (e, s), end in sorted(self._used.items())],
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        prf: Prf,
        *,
        tolerance: timedelta = DEFAULT_TOLERANCE,
        max_revoked: int = MAX_REVOKED,
        max_used: int = MAX_USED,
    ) -> OfflineCodeBook:
        """A book from :meth:`to_dict`; IntegrityError if the state is malformed."""
        try:
            if set(data) != {"version", "epoch", "revoked", "used"}:
                raise ValueError("fields")
            if data["version"] != STATE_VERSION:
                raise ValueError("version")
            book = cls(
                prf,
                epoch=data["epoch"],
                tolerance=tolerance,
                max_revoked=max_revoked,
                max_used=max_used,
            )
            for entry in data["revoked"]:
                e, s = _pair(entry, 2)
                book._revoked.add((e, s))
            for entry in data["used"]:
                e, s, end = _pair(entry, 3)
                book._used[(e, s)] = _bounded(end, "end", 1 << 40)
            if len(book._revoked) > max_revoked or len(book._used) > max_used:
                raise ValueError("over the bounds")
        except (ValueError, TypeError, InvalidInput) as exc:
            raise IntegrityError(
                "离线密码状态无效 / offline passcode state is malformed",
                details={"problem": str(exc)[:80]},
            ) from None
        return book


def _bounded(value: object, what: str, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
        raise InvalidInput(f"{what} must be an integer in [0, {hi}]")
    return value


def _pair(entry: object, size: int) -> list[int]:
    if not isinstance(entry, list) or len(entry) != size:
        raise ValueError("entry shape")
    limits = (MAX_EPOCH, SERIAL_LIMIT - 1, 1 << 40)
    return [_bounded(v, "entry", hi) for v, hi in zip(entry, limits, strict=False)]
