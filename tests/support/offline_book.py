"""A table-driven stand-in for the offline code book, to test how the lock *uses* a book
(revocation by serial and epoch, one-time use persisted, state saved in the sealed record).
The real algorithm and its tests are anju.protocol.offline_passcode / anju.device.offline_codes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TableVerdict:
    ok: bool
    reason: str | None
    serial: int | None


class TableBook:
    """Codes known by table: digits -> (serial, epoch issued in, one-time)."""

    def __init__(self, codes: dict[str, tuple[int, int, bool]], state: dict[str, Any] | None):
        self.codes = codes
        state = state or {"epoch": 0, "revoked": [], "used": []}
        self.epoch = int(state["epoch"])
        self.revoked = set(state["revoked"])
        self.used = set(state["used"])

    def check(self, code: str, now_ms: int) -> TableVerdict:
        if code not in self.codes:
            return TableVerdict(False, "unknown_credential", None)
        serial, epoch, one_time = self.codes[code]
        if serial in self.revoked:
            return TableVerdict(False, "revoked", serial)
        if epoch < self.epoch:
            return TableVerdict(False, "epoch_revoked", serial)
        if one_time and serial in self.used:
            return TableVerdict(False, "already_used", serial)
        if one_time:
            self.used.add(serial)
        return TableVerdict(True, None, serial)

    def apply_epoch(self, epoch: int) -> None:
        self.epoch = max(self.epoch, epoch)

    def revoke(self, serials: Iterable[int]) -> None:
        self.revoked.update(serials)

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "revoked": sorted(self.revoked), "used": sorted(self.used)}


def table_book(
    codes: dict[str, tuple[int, int, bool]],
) -> Callable[[Callable[[bytes], bytes], dict[str, Any] | None], TableBook]:
    """An OfflineBookFactory over a fixed table (the PRF is not needed by a table)."""

    def factory(prf: Callable[[bytes], bytes], state: dict[str, Any] | None) -> TableBook:
        return TableBook(codes, state)

    return factory
