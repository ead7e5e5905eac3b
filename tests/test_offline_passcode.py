"""The offline passcode format (anju.protocol.offline_passcode): published vectors both ways, an
independent re-computation of the Feistel rounds, round trips of every kind, no collisions among
concurrently valid codes, and the guessing bound of docs/offline-passcodes.md."""

from __future__ import annotations

import functools
import math
import random
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from anju.errors import InvalidInput
from anju.kit.crypto import hkdf_sm3, hmac_sm3
from anju.protocol import offline_passcode as op
from anju.protocol.access import Schedule
from anju.protocol.keys import SE_HMAC_INFO, se_hmac
from anju.protocol.offline_passcode import (
    HOUR,
    OfflineClear,
    OfflineGrant,
    OfflineKind,
    Recurrence,
    decode_offline_passcode,
    encode_payload,
    issue_clear_code,
    issue_offline_passcode,
)
from tests.vectors import offline_passcode as v

PRF = op.platform_prf(v.ROOT_KEY)
FAST_PRF = functools.partial(hmac_sm3, v.PRF_KEY)  # the same function, key derived once
OTHER_PRF = op.platform_prf(v.OTHER_ROOT_KEY)
CST = timezone(timedelta(hours=8))
T = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)


def _utc(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _grant(row: v.GrantVector) -> OfflineGrant:
    start, end = _utc(row.valid_from), _utc(row.valid_until)
    assert start is not None
    recurrence = None if row.recurrence is None else Recurrence(*row.recurrence)
    return OfflineGrant(OfflineKind(row.kind), start, end, row.slot, row.epoch, recurrence)


@pytest.mark.req("R2", "L13")
def test_prf_is_the_secure_element_hmac_under_the_offline_label() -> None:
    data = v.ROUND0_INPUT
    key = hkdf_sm3(v.ROOT_KEY, length=32, info=SE_HMAC_INFO + b"anju/offline-passcode/v1")
    assert key == v.PRF_KEY
    assert PRF(data) == se_hmac(v.ROOT_KEY, op.OFFLINE_PASSCODE_LABEL, data) == FAST_PRF(data)
    assert PRF(data) == v.ROUND0_PRF
    assert OTHER_PRF(data) != PRF(data)


@pytest.mark.req("R2", "L13")
@pytest.mark.parametrize("row", v.GRANTS, ids=lambda row: f"{row.kind}-{row.digits}")
def test_grant_vectors_both_ways(row: v.GrantVector) -> None:
    grant = _grant(row)
    assert grant.serial == row.serial
    assert encode_payload(grant) == (row.digits, row.payload)
    assert issue_offline_passcode(PRF, grant) == row.code
    assert op.decipher(PRF, row.code, epoch=grant.epoch) == row.payload
    assert decode_offline_passcode(PRF, row.code, epoch=grant.epoch) == grant
    # Under another epoch or another lock's key the same digits mean something else.
    assert decode_offline_passcode(PRF, row.code, epoch=grant.epoch + 1) != grant
    assert decode_offline_passcode(OTHER_PRF, row.code, epoch=grant.epoch) != grant


@pytest.mark.req("R2", "L15")
@pytest.mark.parametrize("row", v.CLEARS, ids=lambda row: row.code)
def test_clear_code_vectors_both_ways(row: v.ClearVector) -> None:
    clear = OfflineClear(row.epoch, new_epoch=row.new_epoch, revoke_serial=row.revoke_serial)
    assert encode_payload(clear) == (12, row.payload)
    code = issue_clear_code(
        PRF, epoch=row.epoch, new_epoch=row.new_epoch, revoke_serial=row.revoke_serial
    )
    assert code == row.code
    assert decode_offline_passcode(PRF, row.code, epoch=row.epoch) == clear


@pytest.mark.req("R2", "L13")
def test_feistel_rounds_recomputed_from_the_documented_definition() -> None:
    """The rounds as docs/offline-passcodes.md states them, written out independently."""
    digits, payload = encode_payload(_grant(v.GRANTS[0]))
    modulus = 10 ** (digits // 2)
    left, right = divmod(payload, modulus)
    trace = [(left, right)]
    for number in range(10):
        data = bytes([1, digits]) + (0).to_bytes(4, "big") + bytes([number])
        data += right.to_bytes(8, "big")
        if number == 0:
            assert data == v.ROUND0_INPUT
            assert int.from_bytes(PRF(data), "big") % modulus == v.ROUND0_VALUE
        left, right = right, (left + int.from_bytes(PRF(data), "big") % modulus) % modulus
        trace.append((left, right))
    assert trace == v.TRACE
    assert f"{left:05d}{right:05d}" == v.GRANTS[0].code


@pytest.mark.req("R2")
def test_docs_print_the_vectors() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "offline-passcodes.md").read_text("utf-8")
    for row in v.GRANTS:
        assert row.code in doc, row
        assert str(row.payload) in doc, row
    for clear in v.CLEARS:
        assert clear.code in doc, clear
        assert str(clear.payload) in doc, clear
    assert v.PRF_KEY.hex() in doc
    assert v.ROUND0_INPUT.hex() in doc
    assert v.ROUND0_PRF.hex() in doc
    for digits in op.FORMATS:  # the stated guessing bounds are the computed ones
        bits = -math.log2(op.guess_acceptance_bound(digits))
        assert f"{bits:.2f}" in doc, digits


def _random_grant(rng: random.Random) -> OfflineGrant:
    kind = rng.choice([k for k in OfflineKind if k is not OfflineKind.CLEAR])
    slot, epoch = rng.randrange(op.SLOTS), rng.choice([0, 1, 7, op.MAX_EPOCH])
    if kind is OfflineKind.RECURRING:
        first = date(2025, 1, 1) + timedelta(days=rng.randrange(op.DAY_LIMIT))
        start = datetime.combine(first, datetime.min.time(), UTC)
        rec = Recurrence(rng.randrange(1, 128), rng.randrange(24), rng.randrange(1, 25))
        weeks = rng.randrange(1, op.MAX_WEEKS + 1)
        return OfflineGrant(kind, start, start + timedelta(weeks=weeks), slot, epoch, rec)
    start = op.BASE + rng.randrange(op.HOUR_LIMIT) * HOUR
    if kind is OfflineKind.PERMANENT:
        return OfflineGrant(kind, start, None, slot, epoch)
    longest = 168 if kind is OfflineKind.ONE_TIME else 26304
    hours = rng.choice([1, 24, 25, 168, 169, 2880, 2881, longest, rng.randrange(1, longest + 1)])
    return OfflineGrant(kind, start, start + min(hours, longest) * HOUR, slot, epoch)


@pytest.mark.req("R2", "L15")
def test_every_kind_round_trips_at_every_length() -> None:
    rng = random.Random(20260301)
    lengths: dict[OfflineKind, set[int]] = {}
    for _ in range(400):
        grant = _random_grant(rng)
        code = issue_offline_passcode(FAST_PRF, grant)
        assert len(code) == op.code_length(grant)
        assert code.isdigit()
        assert decode_offline_passcode(FAST_PRF, code, epoch=grant.epoch) == grant
        lengths.setdefault(grant.kind, set()).add(len(code))
    assert lengths == {
        OfflineKind.ONE_TIME: {10, 12},
        OfflineKind.PERIOD: {12, 14, 16},
        OfflineKind.PERMANENT: {14},
        OfflineKind.RECURRING: {16},
    }
    for epoch, new_epoch, serial in [(0, 1, None), (5, 13, None), (9, None, op.SERIAL_LIMIT - 1)]:
        code = issue_clear_code(FAST_PRF, epoch=epoch, new_epoch=new_epoch, revoke_serial=serial)
        assert len(code) == op.CLEAR_DIGITS
        assert decode_offline_passcode(FAST_PRF, code, epoch=epoch) == OfflineClear(
            epoch, new_epoch, serial
        )


def _concurrent_grants(count: int, at: datetime) -> list[OfflineGrant]:
    """``count`` grants of every kind and length, all valid at ``at``, with distinct serials."""
    grants = []
    now = at.replace(minute=0)
    for i in range(count):
        start, slot = now - (i // op.SLOTS + 1) * HOUR, i % op.SLOTS
        age = (now - start) // HOUR
        if i % 11 == 0:
            first = start.replace(hour=0)
            rec = Recurrence(127, start.hour, 24)
            grant = OfflineGrant(
                OfflineKind.RECURRING, first, first + timedelta(weeks=53), slot, recurrence=rec
            )
        elif i % 7 == 0:
            grant = OfflineGrant(OfflineKind.PERMANENT, start, None, slot)
        else:
            hours = age + 1 + (i % 5) + (3000 if i % 3 == 0 else 0)
            kind = OfflineKind.ONE_TIME if hours <= 168 and i % 2 else OfflineKind.PERIOD
            grant = OfflineGrant(kind, start, start + hours * HOUR, slot)
        grants.append(grant)
    return grants


@pytest.mark.req("R2", "L15")
def test_ten_thousand_concurrently_valid_codes_never_collide() -> None:
    grants = _concurrent_grants(10_000, T)
    assert all(grant.admits(T) is None for grant in grants)
    assert len({grant.serial for grant in grants}) == len(grants)
    codes = [issue_offline_passcode(FAST_PRF, grant) for grant in grants]
    assert len(set(codes)) == len(codes)
    assert {len(code) for code in codes} == {10, 12, 14, 16}
    for grant, code in zip(grants, codes, strict=True):
        assert decode_offline_passcode(FAST_PRF, code, epoch=0) == grant


@pytest.mark.req("R2", "L15")
def test_each_code_length_is_at_least_as_hard_to_guess_as_a_six_digit_pin() -> None:
    for digits, regions in op.FORMATS.items():
        assert sum(region.size for region in regions) <= 10**digits
        assert op.guess_acceptance_bound(digits) <= 1e-6, digits
    # Clear codes: a random 12-digit guess moves the epoch with negligible probability.
    tweaks = op.EPOCH_LOOKAHEAD + 1 + op.EPOCH_HINDSIGHT
    assert tweaks * op.MAX_ADVANCE / 10**op.CLEAR_DIGITS < 1e-10


def _admitted(grants: list[OfflineGrant], at: datetime, tolerance: timedelta) -> int:
    return sum(grant.admits(at, tolerance) is None for grant in grants)


@pytest.mark.req("R2", "L15")
@pytest.mark.parametrize(
    ("kind", "lo", "hi"), [(OfflineKind.ONE_TIME, 1, 24), (OfflineKind.PERIOD, 1, 168)]
)
def test_admitted_payload_count_reaches_but_never_exceeds_the_bound(
    kind: OfflineKind, lo: int, hi: int
) -> None:
    """Every (start, hours) a lock admits at an instant, counted by brute force, against the
    bound the guessing analysis uses (slots multiply both sides alike)."""
    hour = T.replace(minute=0)
    grants = [
        OfflineGrant(kind, hour - back * HOUR, hour - back * HOUR + hours * HOUR)
        for hours in range(lo, hi + 1)
        for back in range(-2, hi + 3)
    ]
    bound = sum(hours + 1 for hours in range(lo, hi + 1))
    counts = [
        _admitted(grants, hour + offset, tolerance)
        for tolerance in (timedelta(0), timedelta(minutes=15), op.MAX_TOLERANCE)
        for offset in (timedelta(0), timedelta(minutes=10), timedelta(minutes=59, seconds=59))
    ]
    assert max(counts) == bound
    assert min(counts) == sum(range(lo, hi + 1))  # no tolerance, mid-hour: exactly Σ hours


@pytest.mark.req("R2", "L15")
def test_recurring_admitted_windows_per_date_range_within_the_bound() -> None:
    """For one date range, the (weekdays, start hour, hours) a lock admits at an instant."""
    first = datetime(2026, 6, 1, tzinfo=UTC)
    bound = 64 * sum(hours + 1 for hours in range(1, 25))
    grants = [
        OfflineGrant(
            OfflineKind.RECURRING,
            first,
            first + timedelta(weeks=4),
            recurrence=Recurrence(weekdays, start, hours),
        )
        for weekdays in range(1, 128)
        for start in range(24)
        for hours in range(1, 25)
    ]
    for at in (T.replace(minute=0), T.replace(minute=14), T.replace(hour=23, minute=50)):
        count = _admitted(grants, at, op.MAX_TOLERANCE)
        assert 0.95 * bound < count <= bound


@pytest.mark.req("R2", "L15")
def test_random_codes_decode_to_a_grant_at_the_rate_of_the_payload_space() -> None:
    """A random code falls on a uniformly random payload: the share that lands inside the
    payload regions matches their size (the premise of the guessing bound)."""
    rng = random.Random(4)
    trials = 40_000
    space = sum(region.size for region in op.FORMATS[10])
    hits = [
        decode_offline_passcode(FAST_PRF, f"{rng.randrange(10**10):010d}", epoch=0)
        for _ in range(trials)
    ]
    found = [grant for grant in hits if grant is not None]
    expected = trials * space / 10**10
    assert abs(len(found) - expected) <= 5 * math.sqrt(expected)


@pytest.mark.req("R2", "L15")
def test_grants_refuse_ambiguous_or_out_of_range_input() -> None:
    start = datetime(2026, 3, 1, 14, tzinfo=UTC)
    period = OfflineKind.PERIOD
    bad = [
        lambda: OfflineGrant(period, datetime(2026, 3, 1, 14), start + HOUR),  # naive
        lambda: OfflineGrant(period, start + timedelta(minutes=30), start + 2 * HOUR),
        lambda: OfflineGrant(period, start, start),
        lambda: OfflineGrant(period, start, start - HOUR),
        lambda: OfflineGrant(period, start, None),
        lambda: OfflineGrant(OfflineKind.PERMANENT, start, start + HOUR),
        lambda: OfflineGrant(OfflineKind.ONE_TIME, start, start + 169 * HOUR),
        lambda: OfflineGrant(period, start, start + 26305 * HOUR),
        lambda: OfflineGrant(period, start, start + HOUR, slot=4),
        lambda: OfflineGrant(period, start, start + HOUR, epoch=-1),
        lambda: OfflineGrant(period, start, start + HOUR, epoch=op.MAX_EPOCH + 1),
        lambda: OfflineGrant(period, datetime(2024, 12, 31, 23, tzinfo=UTC), start),
        lambda: OfflineGrant(OfflineKind.CLEAR, start, start + HOUR),
        lambda: OfflineGrant(period, start, start + HOUR, recurrence=Recurrence(1, 0, 1)),
        lambda: OfflineGrant(OfflineKind.RECURRING, start, start + timedelta(weeks=1)),
        lambda: OfflineGrant(  # not from 00:00 UTC
            OfflineKind.RECURRING, start, start + timedelta(weeks=1), recurrence=Recurrence(1, 0, 1)
        ),
        lambda: OfflineGrant(  # not whole weeks
            OfflineKind.RECURRING,
            start.replace(hour=0),
            start.replace(hour=0) + timedelta(days=10),
            recurrence=Recurrence(1, 0, 1),
        ),
        lambda: OfflineGrant(  # more than 53 weeks
            OfflineKind.RECURRING,
            start.replace(hour=0),
            start.replace(hour=0) + timedelta(weeks=54),
            recurrence=Recurrence(1, 0, 1),
        ),
        lambda: Recurrence(0, 9, 8),
        lambda: Recurrence(1, 24, 1),
        lambda: Recurrence(1, 0, 25),
        lambda: OfflineClear(3),
        lambda: OfflineClear(3, new_epoch=3),
        lambda: OfflineClear(3, new_epoch=12),
        lambda: OfflineClear(3, new_epoch=4, revoke_serial=1),
        lambda: OfflineClear(3, revoke_serial=op.SERIAL_LIMIT),
    ]
    for make in bad:
        with pytest.raises(InvalidInput):
            make()


@pytest.mark.req("R2", "L15")
def test_times_in_any_zone_mean_the_same_utc_hours() -> None:
    local = OfflineGrant(
        OfflineKind.PERIOD,
        datetime(2026, 3, 1, 14, tzinfo=CST),
        datetime(2026, 3, 3, 12, tzinfo=CST),
    )
    assert local == _grant(v.GRANTS[2])
    assert local.valid_from.tzinfo is UTC
    assert issue_offline_passcode(PRF, local) == v.GRANTS[2].code


@pytest.mark.req("R2", "L15")
def test_local_schedules_become_utc_recurrences() -> None:
    office = Schedule(0b0011111, 9 * 60, 17 * 60)  # Mon–Fri 09:00–17:00 CST
    assert Recurrence.from_schedule(office) == (Recurrence(0b0011111, 1, 8), 0)
    weekend_morning = Schedule(0b1100000, 6 * 60, 10 * 60)  # Sat, Sun 06:00–10:00 CST
    assert Recurrence.from_schedule(weekend_morning) == (Recurrence(0b0110000, 22, 4), -1)
    evening_new_york = Schedule(0b0000001, 20 * 60, 23 * 60, utc_offset_minutes=-300)
    assert Recurrence.from_schedule(evening_new_york) == (Recurrence(0b0000010, 1, 3), 1)
    night = Schedule(0b1000000, 22 * 60, 6 * 60)  # Sunday 22:00 CST to Monday 06:00
    assert Recurrence.from_schedule(night) == (Recurrence(0b1000000, 14, 8), 0)
    all_day = Schedule(0b0000001, 0, 1440)
    assert Recurrence.from_schedule(all_day) == (Recurrence(0b1000000, 16, 24), -1)
    for unsupported in (
        Schedule(1, 9 * 60, 17 * 60, utc_offset_minutes=330),  # UTC+5:30
        Schedule(1, 9 * 60 + 30, 17 * 60),
    ):
        with pytest.raises(InvalidInput):
            Recurrence.from_schedule(unsupported)
    grant = OfflineGrant.recurring_local(
        first_day=date(2026, 3, 7), weeks=4, schedule=weekend_morning, slot=1
    )
    assert grant == _grant(v.GRANTS[7])


@pytest.mark.req("R2", "L15")
def test_decoding_never_raises_on_foreign_input() -> None:
    for text in [
        "",
        "abc",
        "123456789",
        "1" * 11,
        "1" * 1000,
        "１２３４５６７８９０",
        " 123456789",
    ]:
        assert decode_offline_passcode(PRF, text, epoch=0) is None
        assert not op.is_code_shaped(text)
    assert decode_offline_passcode(PRF, v.GRANTS[0][9], epoch=-1) is None
    assert op.is_code_shaped("0000000000")
