"""How the lock uses an offline passcode code book (docs/device-sdk.md, "Offline passcodes").

The algorithm lives in :mod:`anju.protocol.offline_passcode` and the lock state (epoch, revoked
serials, used one-time codes) in a code book (:class:`anju.device.offline_codes.OfflineCodeBook`,
the default: :func:`code_book`); this module names only what the access agent needs from a
book, so the agent does not depend on the algorithm's internals. The book's state is kept inside
the sealed access record (``to_dict``) and saved after every check and revocation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from anju.device.offline_codes import OfflineCodeBook, OfflineOutcome
from anju.protocol.offline_passcode import OFFLINE_PASSCODE_LABEL

#: The SE HMAC label of the per-lock PRF that offline codes are derived with (the platform
#: computes the same PRF from its copy of the root key: protocol.offline_passcode.platform_prf).
OFFLINE_PRF_LABEL = OFFLINE_PASSCODE_LABEL
#: The book says a typed clear code was applied (nothing opens; not a wrong attempt).
CLEARED = "cleared"


class OfflineVerdict(Protocol):
    """The book's verdict on typed digits."""

    @property
    def ok(self) -> bool: ...

    @property
    def reason(self) -> str | None:
        """A REASONS code when refused (``unknown_credential`` when it is no offline code)."""
        ...

    @property
    def serial(self) -> int | None:
        """The code's serial when the digits decode as an offline code of this lock."""
        ...


class OfflineBook(Protocol):
    """The lock's offline code state."""

    def check(self, code: str, now_ms: int) -> OfflineVerdict:
        """Whether ``code`` opens at ``now_ms`` (marks a one-time code used)."""
        ...

    def apply_epoch(self, epoch: int) -> None:
        """Refuse every code issued before ``epoch`` from now on."""
        ...

    def revoke(self, serials: Iterable[int]) -> None:
        """Refuse these serials from now on."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The state to store."""
        ...


#: Makes the lock's book from its PRF (``se.hmac(OFFLINE_PRF_LABEL, ·)``) and stored state.
OfflineBookFactory = Callable[[Callable[[bytes], bytes], dict[str, Any] | None], OfflineBook]


@dataclass(frozen=True)
class BookVerdict:
    """An :class:`OfflineVerdict` of the real code book."""

    ok: bool
    reason: str | None
    serial: int | None


class CodeBookAdapter:
    """The real :class:`OfflineCodeBook` behind the :class:`OfflineBook` protocol.

    ``revoke`` adopts the pushed serials as the whole list of the current epoch (the platform
    always sends the lock's complete list and drops codes that expired, so it stays bounded);
    digits that are no offline code's length are simply an unknown credential.
    """

    def __init__(self, book: OfflineCodeBook) -> None:
        self.book = book

    def check(self, code: str, now_ms: int) -> BookVerdict:
        verdict = self.book.check(code, datetime.fromtimestamp(now_ms / 1000, UTC))
        if verdict.outcome is OfflineOutcome.CLEARED:
            clear = verdict.clear
            return BookVerdict(False, CLEARED, None if clear is None else clear.revoke_serial)
        serial = None if verdict.grant is None else verdict.grant.serial
        reason = verdict.reason
        if reason == "malformed":
            reason = "unknown_credential"
        return BookVerdict(verdict.accepted, None if verdict.accepted else reason, serial)

    def apply_epoch(self, epoch: int) -> None:
        self.book.apply_epoch(epoch)

    def revoke(self, serials: Iterable[int]) -> None:
        self.book.revoke(serials, replace=True)

    def to_dict(self) -> dict[str, Any]:
        return self.book.to_dict()


def code_book(prf: Callable[[bytes], bytes], state: dict[str, Any] | None) -> CodeBookAdapter:
    """The lock's default :data:`OfflineBookFactory`: the real code book, from its state."""
    book = OfflineCodeBook(prf) if state is None else OfflineCodeBook.from_dict(state, prf)
    return CodeBookAdapter(book)
