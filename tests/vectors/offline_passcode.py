"""Offline passcode test vectors: a fixed lock root key, grants and the codes they give.

Everything here is data, checked both ways (grant → payload → code and back) by
``tests/test_offline_passcode.py`` and printed in docs/offline-passcodes.md ("Test vectors").
Times are UTC; the recurring vectors come from China Standard Time schedules (UTC+8).
"""

from __future__ import annotations

from typing import NamedTuple

ROOT_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
"""The device root key of the worked example of docs/protocol.md (never use it for real)."""
OTHER_ROOT_KEY = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
"""Another lock (negative tests)."""
PRF_KEY = bytes.fromhex("c34fb702c42a3ae35864e81ae8a33257985232a59c542bda574a648be4d9b2df")
"""HKDF-SM3(ROOT_KEY, 32, info = b"anju/se/hmac/v1:anju/offline-passcode/v1")."""


class GrantVector(NamedTuple):
    """A grant (times in UTC), its revocation serial, code length, payload and code."""

    kind: str
    valid_from: str
    valid_until: str | None
    slot: int
    epoch: int
    recurrence: tuple[int, int, int] | None  # (weekdays, start hour, hours), UTC
    serial: int
    digits: int
    payload: int
    code: str


class ClearVector(NamedTuple):
    """A clear code (12 digits) issued at ``epoch``."""

    epoch: int
    new_epoch: int | None
    revoke_serial: int | None
    payload: int
    code: str


GRANTS = [
    # a 4-hour one-time code (a delivery)
    GrantVector("one_time", "2026-03-01T14:00Z", "2026-03-01T18:00Z", 0, 0, None,
                40760, 10, 978252, "5859515770"),
    # a 3-day one-time code
    GrantVector("one_time", "2026-03-01T14:00Z", "2026-03-04T14:00Z", 1, 0, None,
                40761, 12, 5869629, "860012926668"),
    # two nights: check in 14:00, check out 12:00 China Standard Time
    GrantVector("period", "2026-03-01T06:00Z", "2026-03-03T04:00Z", 0, 0, None,
                40728, 12, 157837428, "689409516538"),
    # about three months, at epoch 2
    GrantVector("period", "2026-03-01T06:00Z", "2026-05-30T04:00Z", 0, 2, None,
                40728, 14, 110462292, "38643643135283"),
    # permanent from 2026-03-01 08:00 China Standard Time
    GrantVector("permanent", "2026-03-01T00:00Z", None, 2, 2, None,
                40706, 14, 2843778818, "31953553813006"),
    # a one-year lease
    GrantVector("period", "2026-03-01T06:00Z", "2027-03-01T04:00Z", 0, 2, None,
                40728, 16, 954036180, "2250811802441047"),
    # Monday–Friday 09:00–17:00 CST for 12 weeks from Monday 2026-03-02
    GrantVector("recurring", "2026-03-02T00:00Z", "2026-05-25T00:00Z", 0, 0, (0b0011111, 1, 8),
                40804, 16, 31156127356, "2305419006978103"),
    # Saturday and Sunday 06:00–10:00 CST for 4 weeks from Saturday 2026-03-07: in UTC the
    # windows start at 22:00 on Friday and Saturday
    GrantVector("recurring", "2026-03-06T00:00Z", "2026-04-03T00:00Z", 1, 0, (0b0110000, 22, 4),
                41273, 16, 31215860557, "4296932330489854"),
]  # fmt: skip

CLEARS = [
    ClearVector(2, 3, None, 327155712, "278104977368"),  # move the lock from epoch 2 to 3
    ClearVector(2, None, 40706, 327196426, "142160741055"),  # revoke the permanent code above
]

# The Feistel rounds of the first vector: payload 978252 = (left 9, right 78252); round 0's PRF
# input (version, length, epoch, round, right half as u64) and output, then (left, right)
# after each of the 10 rounds; the last pair is the code 58595 ‖ 15770.
ROUND0_INPUT = bytes.fromhex("010a000000000000000000000131ac")
ROUND0_PRF = bytes.fromhex("e9cfacc60d928918274c8d995be6ae97b2013de97ff9a5ad365f473f402e95b0")
ROUND0_VALUE = 28080
TRACE = [
    (9, 78252),
    (78252, 28089),
    (28089, 23968),
    (23968, 94902),
    (94902, 69818),
    (69818, 16500),
    (16500, 47933),
    (47933, 82525),
    (82525, 90187),
    (90187, 58595),
    (58595, 15770),
]
