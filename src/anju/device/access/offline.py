"""How the lock uses an offline passcode code book (docs/device-sdk.md, "Offline passcodes").

The algorithm lives in :mod:`anju.protocol.offline_passcode` and the lock state (epoch, revoked
serials, used one-time codes) in a code book; this module names only what the access agent needs
from a book, so the agent does not depend on the algorithm's internals. The book's state is kept
inside the sealed access record (``to_dict``) and saved after every check and revocation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

#: The SE HMAC label of the per-lock PRF that offline codes are derived with.
OFFLINE_PRF_LABEL = "offline-passcode"


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
