"""Offline passcodes: digits a lock checks with only its own secret and its clock (R2, L13, L15).

The algorithm is open; docs/offline-passcodes.md gives the math, the bounds and test vectors.

    payload = the grant as one integer: per code length, a fixed list of regions, each a
              mixed-radix packing of its fields (start hour, hours, slot, …)
    code    = Feistel(prf, tweak = (version, length, epoch))(payload), written as `length` digits

``prf`` is HMAC-SM3 under the lock's own key HKDF-SM3(root key, "anju/se/hmac/v1:" ‖ label):
the platform computes it from its copy of the root key (:func:`platform_prf`), the lock inside
its secure element (``SoftwareSecureElement.hmac``), so the key never leaves the SE. The Feistel
network over two decimal halves is a bijection of [0, 10^length): distinct payloads of one epoch
give distinct codes. Validity is explicit (start and end on whole UTC hours, no activation
window); the lock needs no time zone. Each code is enciphered under its revocation epoch, which
the lock tries (its own, and up to three later ones), so a clear code or a pushed epoch revokes
every older code for good.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from anju.errors import InvalidInput
from anju.protocol.keys import se_hmac
from anju.protocol.offline_grants import (
    BASE,
    DAY,
    DAY_LIMIT,
    DEFAULT_TOLERANCE,
    HOUR,
    HOUR_LIMIT,
    MAX_ADVANCE,
    MAX_EPOCH,
    MAX_HOURS,
    MAX_TOLERANCE,
    MAX_WEEKS,
    SERIAL_LIMIT,
    SLOTS,
    OfflineClear,
    OfflineGrant,
    OfflineKind,
    Recurrence,
    hour_index,
    seconds_since_base,
)

__all__ = [
    "BASE",
    "DAY_LIMIT",
    "DEFAULT_TOLERANCE",
    "HOUR",
    "HOUR_LIMIT",
    "MAX_ADVANCE",
    "MAX_EPOCH",
    "MAX_HOURS",
    "MAX_TOLERANCE",
    "MAX_WEEKS",
    "SERIAL_LIMIT",
    "SLOTS",
    "OfflineClear",
    "OfflineGrant",
    "OfflineKind",
    "Recurrence",
    "hour_index",
    "seconds_since_base",
]

Prf = Callable[[bytes], bytes]

#: The SE HMAC label of the per-lock offline passcode key.
OFFLINE_PASSCODE_LABEL = "anju/offline-passcode/v1"
FORMAT_VERSION = 1
EPOCH_LOOKAHEAD = 3  # a lock accepts codes of up to three epochs ahead (and adopts them)
EPOCH_HINDSIGHT = 2  # older epochs it decodes only to say "epoch_revoked"
ROUNDS = 10
_ROUND_INPUT = struct.Struct(">BBIBQ")  # version, length, epoch, round, half


# --- payload layout ------------------------------------------------------------------------
@dataclass(frozen=True)
class Region:
    """One block of a code length's payload space: a kind and how its fields are packed."""

    shape: str  # "window" | "permanent" | "recurring" | "advance" | "revoke"
    kind: OfflineKind
    min_hours: int = 0
    max_hours: int = 0

    @property
    def radices(self) -> tuple[int, ...]:
        """Field ranges, most significant first (the slot is always last)."""
        if self.shape == "window":  # start hour, hours - min_hours, slot
            return (HOUR_LIMIT, self.max_hours - self.min_hours + 1, SLOTS)
        if self.shape == "recurring":  # first day, weeks-1, weekdays-1, start, hours-1, slot
            return (DAY_LIMIT, MAX_WEEKS, 127, 24, 24, SLOTS)
        if self.shape == "advance":  # new epoch - epoch - 1
            return (MAX_ADVANCE,)
        return (HOUR_LIMIT, SLOTS)  # permanent: start hour, slot; revoke: the serial

    def holds(self, item: OfflineGrant | OfflineClear) -> bool:
        """Whether ``item`` is encoded in this region."""
        if item.kind is not self.kind:
            return False
        if isinstance(item, OfflineClear):
            return (self.shape == "advance") == (item.new_epoch is not None)
        return self.shape != "window" or self.min_hours <= (item.hours or 0) <= self.max_hours

    @property
    def size(self) -> int:
        return functools.reduce(lambda a, b: a * b, self.radices, 1)

    def admitted_bound(self) -> int:
        """Most payloads of this region a lock admits at any one instant (any tolerance up
        to 30 minutes); clear codes open nothing (0). docs/offline-passcodes.md derives it."""
        if self.shape == "window":
            return SLOTS * sum(h + 1 for h in range(self.min_hours, self.max_hours + 1))
        if self.shape == "permanent":
            return SLOTS * HOUR_LIMIT
        if self.shape == "recurring":
            ranges = sum(7 * w for w in range(1, MAX_WEEKS + 1))  # date ranges holding a day
            windows = sum(h + 1 for h in range(1, 25))  # (start, hours) pairs holding a time
            return SLOTS * ranges * 64 * windows  # 64 weekday sets hold a given weekday
        return 0


_ONE_TIME, _PERIOD = OfflineKind.ONE_TIME, OfflineKind.PERIOD
_LONGEST_ONE_TIME, _LONGEST_PERIOD = MAX_HOURS[_ONE_TIME], MAX_HOURS[_PERIOD]
#: The payload regions of each code length. A grant goes to the shortest length that holds it.
FORMATS: dict[int, tuple[Region, ...]] = {
    10: (Region("window", _ONE_TIME, 1, 24),),
    12: (
        Region("window", _ONE_TIME, 25, _LONGEST_ONE_TIME),
        Region("window", _PERIOD, 1, 168),
        Region("advance", OfflineKind.CLEAR),
        Region("revoke", OfflineKind.CLEAR),
    ),
    14: (Region("window", _PERIOD, 169, 2880), Region("permanent", OfflineKind.PERMANENT)),
    16: (
        Region("window", _PERIOD, 2881, _LONGEST_PERIOD),
        Region("recurring", OfflineKind.RECURRING),
    ),
}
CLEAR_DIGITS = 12


def guess_acceptance_bound(digits: int) -> float:
    """Upper bound on the chance that one random ``digits``-long guess opens a lock."""
    admitted = sum(region.admitted_bound() for region in FORMATS[digits])
    space: int = 10**digits
    return (EPOCH_LOOKAHEAD + 1) * admitted / space


def _pack(values: Iterable[int], radices: tuple[int, ...]) -> int:
    index = 0
    for value, radix in zip(values, radices, strict=True):
        index = index * radix + value
    return index


def _unpack(index: int, radices: tuple[int, ...]) -> list[int]:
    values = []
    for radix in reversed(radices):
        index, value = divmod(index, radix)
        values.append(value)
    return values[::-1]


def _place(item: OfflineGrant | OfflineClear) -> tuple[int, int, Region]:
    """(code length, offset of the region, region) that holds ``item``: the shortest."""
    for digits, regions in FORMATS.items():
        offset = 0
        for region in regions:
            if region.holds(item):
                return digits, offset, region
            offset += region.size
    raise InvalidInput(f"no offline code format holds this {item.kind.value} grant")


def code_length(item: OfflineGrant | OfflineClear) -> int:
    """How many digits the code of ``item`` has."""
    return _place(item)[0]


def encode_payload(item: OfflineGrant | OfflineClear) -> tuple[int, int]:
    """(code length, payload integer) of a grant or clear instruction (before enciphering)."""
    digits, offset, region = _place(item)
    if isinstance(item, OfflineClear):
        if item.new_epoch is not None:
            return digits, offset + item.new_epoch - item.epoch - 1
        return digits, offset + (item.revoke_serial or 0)
    if region.shape == "window":
        fields = [item.first_hour, (item.hours or 0) - region.min_hours, item.slot]
    elif region.shape == "permanent":
        fields = [item.first_hour, item.slot]
    else:
        rec = item.recurrence
        assert rec is not None
        first_day, weeks = hour_index(item.valid_from) // 24, (item.hours or 0) // (7 * 24)
        fields = [first_day, weeks - 1, rec.weekdays - 1, rec.start_hour, rec.hours - 1]
        fields.append(item.slot)
    return digits, offset + _pack(fields, region.radices)


def decode_payload(digits: int, payload: int, *, epoch: int) -> OfflineGrant | OfflineClear | None:
    """The grant or clear instruction a payload of a ``digits``-long code stands for, or None
    when it lies outside every region (not a code of this lock at ``epoch``)."""
    for region in FORMATS.get(digits, ()):
        if payload >= region.size:
            payload -= region.size
            continue
        values = _unpack(payload, region.radices)
        if region.shape == "advance":
            new_epoch = epoch + values[0] + 1
            return OfflineClear(epoch, new_epoch=new_epoch) if new_epoch <= MAX_EPOCH else None
        if region.shape == "revoke":
            return OfflineClear(epoch, revoke_serial=_pack(values, region.radices))
        if region.shape == "recurring":
            first_day, weeks, weekdays, start_hour, hours, slot = values
            start = BASE + first_day * DAY
            return OfflineGrant(
                region.kind,
                start,
                start + timedelta(weeks=weeks + 1),
                slot=slot,
                epoch=epoch,
                recurrence=Recurrence(weekdays + 1, start_hour, hours + 1),
            )
        start = BASE + values[0] * HOUR
        if region.shape == "permanent":
            return OfflineGrant(region.kind, start, None, slot=values[1], epoch=epoch)
        until = start + (values[1] + region.min_hours) * HOUR
        return OfflineGrant(region.kind, start, until, slot=values[2], epoch=epoch)
    return None


# --- the format-preserving permutation -----------------------------------------------------
def _round_value(prf: Prf, digits: int, epoch: int, number: int, half: int) -> int:
    data = _ROUND_INPUT.pack(FORMAT_VERSION, digits, epoch, number, half)
    modulus: int = 10 ** (digits // 2)
    return int.from_bytes(prf(data), "big") % modulus


def encipher(prf: Prf, payload: int, *, digits: int, epoch: int) -> str:
    """The code of ``payload``: a ROUNDS-round Feistel network over two decimal halves, each
    round adding (mod 10^(digits/2)) the PRF of the other half under the tweak."""
    modulus: int = 10 ** (digits // 2)
    if digits not in FORMATS or not 0 <= payload < modulus * modulus:
        raise InvalidInput("offline passcode payload out of range")
    if not 0 <= epoch <= MAX_EPOCH:
        raise InvalidInput("offline passcode epoch out of range")
    left, right = divmod(payload, modulus)
    for number in range(ROUNDS):
        left, right = right, (left + _round_value(prf, digits, epoch, number, right)) % modulus
    return str(left * modulus + right).zfill(digits)


def decipher(prf: Prf, code: str, *, epoch: int) -> int:
    """The payload of a code (the inverse of :func:`encipher`); ``code`` must be well shaped."""
    digits = len(code)
    modulus: int = 10 ** (digits // 2)
    left, right = divmod(int(code), modulus)
    for number in reversed(range(ROUNDS)):
        left, right = (right - _round_value(prf, digits, epoch, number, left)) % modulus, left
    return left * modulus + right


def is_code_shaped(code: object) -> bool:
    """Whether ``code`` is ASCII digits of one of the code lengths (checked before any work)."""
    return isinstance(code, str) and len(code) in FORMATS and code.isascii() and code.isdigit()


# --- the two sides -------------------------------------------------------------------------
def platform_prf(root_key: bytes) -> Prf:
    """The platform's PRF for a lock: ``se_hmac(root key, OFFLINE_PASSCODE_LABEL, ·)``."""
    return functools.partial(se_hmac, root_key, OFFLINE_PASSCODE_LABEL)


def issue_offline_passcode(prf: Prf, grant: OfflineGrant) -> str:
    """The code of ``grant`` for the lock whose PRF is ``prf`` (platform side)."""
    digits, payload = encode_payload(grant)
    return encipher(prf, payload, digits=digits, epoch=grant.epoch)


def issue_clear_code(
    prf: Prf, *, epoch: int, new_epoch: int | None = None, revoke_serial: int | None = None
) -> str:
    """A clear code issued at ``epoch``: typed on the lock, it moves the lock to
    ``new_epoch`` or revokes serial ``revoke_serial`` of ``epoch`` (platform side)."""
    clear = OfflineClear(epoch, new_epoch=new_epoch, revoke_serial=revoke_serial)
    digits, payload = encode_payload(clear)
    return encipher(prf, payload, digits=digits, epoch=epoch)


def decode_offline_passcode(
    prf: Prf, code: str, *, epoch: int
) -> OfflineGrant | OfflineClear | None:
    """What ``code`` says if it was issued at ``epoch`` by this lock's key; None when it is
    not a code of this lock at that epoch (or not code shaped). Validity is not checked."""
    if not is_code_shaped(code) or not 0 <= epoch <= MAX_EPOCH:
        return None
    return decode_payload(len(code), decipher(prf, code, epoch=epoch), epoch=epoch)
