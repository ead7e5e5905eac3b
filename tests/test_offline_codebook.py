"""The lock's offline code book (anju.device.offline_codes): every kind opens inside its validity
and nowhere else, clock drift within the tolerance, no activation window, one-time codes once,
revocation by clear code, pushed epoch and revocation list (a frozen person's old code), guesses,
foreign input, bounded memory and durable state."""

from __future__ import annotations

import functools
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from anju.device import SoftwareSecureElement
from anju.device.offline_codes import (
    MAX_REVOKED,
    MAX_USED,
    REFUSALS,
    OfflineBookFull,
    OfflineCodeBook,
    OfflineOutcome,
    OfflineVerdict,
    secure_element_prf,
)
from anju.errors import IntegrityError, InvalidInput
from anju.kit.crypto import hmac_sm3
from anju.protocol.access import REASONS
from anju.protocol.offline_passcode import (
    BASE,
    HOUR,
    OfflineGrant,
    OfflineKind,
    Recurrence,
    code_length,
    decode_offline_passcode,
    issue_clear_code,
    issue_offline_passcode,
    platform_prf,
)
from tests.vectors import offline_passcode as v

PRF = functools.partial(hmac_sm3, v.PRF_KEY)  # = platform_prf(v.ROOT_KEY), key derived once
OTHER_PRF = platform_prf(v.OTHER_ROOT_KEY)
START = datetime(2026, 3, 1, 6, tzinfo=UTC)  # 14:00 China Standard Time
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
TOLERANCE = timedelta(minutes=15)
CST = timezone(timedelta(hours=8))


def _grant(
    kind: OfflineKind = OfflineKind.PERIOD,
    hours: int | None = 46,
    *,
    start: datetime = START,
    slot: int = 0,
    epoch: int = 0,
) -> OfflineGrant:
    return OfflineGrant(kind, start, None if hours is None else start + hours * HOUR, slot, epoch)


def _code(grant: OfflineGrant) -> str:
    return issue_offline_passcode(PRF, grant)


def _refused(verdict: OfflineVerdict, reason: str) -> bool:
    return verdict.outcome is OfflineOutcome.REFUSED and verdict.reason == reason


@pytest.fixture
def book() -> OfflineCodeBook:
    return OfflineCodeBook(PRF)


@pytest.mark.req("R2", "L13", "L14")
def test_platform_codes_open_only_the_lock_whose_secure_element_holds_the_root_key(
    tmp_path: Path,
) -> None:
    pin = b"lock-firmware-pin-0001"
    se, record = SoftwareSecureElement.manufacture(
        tmp_path / "se", device_id="00112233445566778899aabbccddeeff", pin=pin
    )
    se.verify_pin(pin)
    other, _ = SoftwareSecureElement.manufacture(
        tmp_path / "other", device_id="ffeeddccbbaa99887766554433221100", pin=pin
    )
    other.verify_pin(pin)
    code = issue_offline_passcode(platform_prf(record.root_key), _grant())
    lock = OfflineCodeBook(secure_element_prf(se))
    assert lock.check(code, START + HOUR).accepted
    other_lock = OfflineCodeBook(secure_element_prf(other))
    assert _refused(other_lock.check(code, START + HOUR), "unknown_credential")


@pytest.mark.req("R2", "L15")
@pytest.mark.parametrize(
    "grant",
    [
        _grant(OfflineKind.ONE_TIME, 4),
        _grant(OfflineKind.ONE_TIME, 150),
        _grant(OfflineKind.PERIOD, 46),
        _grant(OfflineKind.PERIOD, 2000),
        _grant(OfflineKind.PERIOD, 20000),
        _grant(OfflineKind.PERMANENT, None),
        OfflineGrant(
            OfflineKind.RECURRING,
            START.replace(hour=0),
            START.replace(hour=0) + timedelta(weeks=2),
            recurrence=Recurrence(127, 6, 3),
        ),
    ],
    ids=lambda g: f"{g.kind.value}-{code_length(g)}",
)
def test_every_kind_opens_inside_its_validity_only(
    book: OfflineCodeBook, grant: OfflineGrant
) -> None:
    code = _code(grant)
    assert _refused(book.check(code, START - TOLERANCE - SECOND), "not_yet_valid")
    opened = book.check(code, START + 30 * MINUTE)
    assert opened.accepted
    assert opened.grant == grant
    assert opened.reason is None
    years_later = datetime(2040, 1, 1, 6, 30, tzinfo=UTC)
    if grant.kind is OfflineKind.PERMANENT:
        assert book.check(code, years_later).accepted
    elif grant.kind is OfflineKind.RECURRING:
        assert _refused(book.check(code, START + timedelta(days=1, hours=10)), "outside_schedule")
        assert _refused(book.check(code, years_later), "expired")
    else:
        assert grant.valid_until is not None
        assert _refused(book.check(code, grant.valid_until + TOLERANCE), "expired")


@pytest.mark.req("R2", "L15")
@pytest.mark.parametrize("drift_minutes", [-14, -5, 0, 5, 14])
def test_a_lock_clock_minutes_off_still_honours_the_window_edges(drift_minutes: int) -> None:
    """A guest at the door right at check-in and just before check-out, with the lock's clock
    ``drift_minutes`` off the true time, gets in (the tolerance is 15 minutes)."""
    grant = _grant(OfflineKind.PERIOD, 46)
    assert grant.valid_until is not None
    code = _code(grant)
    drift = drift_minutes * MINUTE
    lock = OfflineCodeBook(PRF)
    assert lock.check(code, START + drift).accepted
    assert lock.check(code, grant.valid_until - SECOND + drift).accepted


@pytest.mark.req("R2", "L15")
@pytest.mark.parametrize("drift_minutes", [-40, -16, 16, 40])
def test_a_lock_clock_further_off_than_the_tolerance_refuses_at_one_edge(
    drift_minutes: int,
) -> None:
    """Past the tolerance a slow clock refuses the guest at check-in, a fast one just before
    check-out (the documented trade-off: the tolerance is what drift the lock may have)."""
    grant = _grant(OfflineKind.PERIOD, 46)
    assert grant.valid_until is not None
    code = _code(grant)
    drift = drift_minutes * MINUTE
    lock = OfflineCodeBook(PRF)
    at_start = lock.check(code, START + drift)
    at_end = lock.check(code, grant.valid_until - SECOND + drift)
    if drift < timedelta(0):
        assert _refused(at_start, "not_yet_valid")
        assert at_end.accepted
    else:
        assert at_start.accepted
        assert _refused(at_end, "expired")


@pytest.mark.req("R2", "L15")
def test_tolerance_edges_to_the_second_and_a_strict_lock() -> None:
    grant = _grant(OfflineKind.PERIOD, 46)
    assert grant.valid_until is not None
    code = _code(grant)
    lock = OfflineCodeBook(PRF)
    assert lock.check(code, START - TOLERANCE).accepted
    assert _refused(lock.check(code, START - TOLERANCE - SECOND), "not_yet_valid")
    assert lock.check(code, grant.valid_until + TOLERANCE - SECOND).accepted
    assert _refused(lock.check(code, grant.valid_until + TOLERANCE), "expired")
    strict = OfflineCodeBook(PRF, tolerance=timedelta(0))
    assert _refused(strict.check(code, START - SECOND), "not_yet_valid")
    assert strict.check(code, START).accepted
    assert _refused(strict.check(code, grant.valid_until), "expired")
    with pytest.raises(InvalidInput):
        OfflineCodeBook(PRF, tolerance=timedelta(minutes=31))
    with pytest.raises(InvalidInput):
        lock.check(code, datetime(2026, 3, 1, 8))  # a naive lock clock is a bug, not a time


@pytest.mark.req("R2", "L15")
def test_a_three_year_code_first_typed_long_after_its_start_opens(book: OfflineCodeBook) -> None:
    """No activation window: validity is in the code, not in when it was first used."""
    grant = _grant(OfflineKind.PERIOD, 26304)
    assert grant.valid_until is not None
    assert grant.valid_until - grant.valid_from > timedelta(days=3 * 365)
    code = _code(grant)
    assert len(code) == 16
    assert book.check(code, START + timedelta(days=400, hours=5)).accepted
    assert book.check(code, grant.valid_until - MINUTE).accepted
    assert _refused(book.check(code, grant.valid_until + TOLERANCE), "expired")


@pytest.mark.req("R2", "L13", "L15")
def test_a_one_time_code_opens_once_even_across_a_restart(book: OfflineCodeBook) -> None:
    grant = _grant(OfflineKind.ONE_TIME, 4)
    code = _code(grant)
    first = book.check(code, START + HOUR)
    assert first.accepted
    assert first.changed
    restarted = OfflineCodeBook.from_dict(json.loads(json.dumps(book.to_dict())), PRF)
    for lock in (book, restarted):
        again = lock.check(code, START + 2 * HOUR)
        assert _refused(again, "already_used")
        assert not again.changed
        assert again.grant == grant
    # The memory of the used code goes once its window (and the tolerance) has passed.
    end_hour = (START - datetime(2025, 1, 1, tzinfo=UTC)) // HOUR + 4
    assert book.to_dict()["used"] == [[0, grant.serial, end_hour]]
    assert _refused(book.check(code, START + 4 * HOUR + TOLERANCE), "expired")
    assert book.to_dict()["used"] == []


@pytest.mark.req("R2", "L15")
def test_used_one_time_memory_is_bounded_and_refuses_rather_than_forgets() -> None:
    assert MAX_USED == 256
    lock = OfflineCodeBook(PRF, max_used=3)
    codes = [_code(_grant(OfflineKind.ONE_TIME, 24, slot=slot)) for slot in range(4)]
    assert all(lock.check(code, START + HOUR).accepted for code in codes[:3])
    assert _refused(lock.check(codes[3], START + HOUR), "store_full")
    assert _refused(lock.check(codes[0], START + HOUR), "already_used")
    # Once their windows have passed, the memory frees itself.
    tomorrow = _grant(OfflineKind.ONE_TIME, 24, start=START + 24 * HOUR)
    assert lock.check(_code(tomorrow), START + 25 * HOUR).accepted
    # Other kinds need no memory.
    assert lock.check(_code(_grant(OfflineKind.PERIOD, 200)), START + 25 * HOUR).accepted


@pytest.mark.req("R2", "L15")
def test_a_recurring_code_opens_in_its_local_hours_only(book: OfflineCodeBook) -> None:
    """Monday–Friday 09:00–17:00 China Standard Time for 12 weeks from Monday 2026-03-02
    (vector 7); the lock knows only UTC."""
    code = v.GRANTS[6].code
    monday = datetime(2026, 3, 9, tzinfo=CST)  # the second week
    assert book.check(code, monday.replace(hour=9, minute=30)).accepted
    assert book.check(code, monday.replace(hour=8, minute=46)).accepted  # 14 minutes early
    assert book.check(code, monday.replace(hour=17, minute=14)).accepted
    for refused_at in (
        monday.replace(hour=8, minute=44),
        monday.replace(hour=17, minute=16),
        monday.replace(hour=3),
        datetime(2026, 3, 7, 10, tzinfo=CST),  # Saturday
        datetime(2026, 3, 8, 10, tzinfo=CST),  # Sunday
    ):
        assert _refused(book.check(code, refused_at), "outside_schedule"), refused_at
    assert _refused(book.check(code, datetime(2026, 2, 27, 10, tzinfo=CST)), "not_yet_valid")
    assert _refused(book.check(code, datetime(2026, 3, 2, 8, 44, tzinfo=CST)), "not_yet_valid")
    assert book.check(code, datetime(2026, 3, 2, 8, 46, tzinfo=CST)).accepted  # first window
    assert book.check(code, datetime(2026, 5, 22, 16, tzinfo=CST)).accepted  # last Friday
    assert _refused(book.check(code, datetime(2026, 5, 25, 10, tzinfo=CST)), "expired")


@pytest.mark.req("R2", "L15")
def test_a_recurring_window_across_utc_midnight(book: OfflineCodeBook) -> None:
    """Saturday and Sunday 06:00–10:00 China Standard Time = Friday and Saturday from 22:00
    UTC (vector 8)."""
    code = v.GRANTS[7].code
    assert book.check(code, datetime(2026, 3, 7, 7, tzinfo=CST)).accepted  # Fri 23:00 UTC
    assert book.check(code, datetime(2026, 3, 8, 9, 30, tzinfo=CST)).accepted  # Sat 01:30 UTC
    assert _refused(book.check(code, datetime(2026, 3, 7, 11, tzinfo=CST)), "outside_schedule")
    assert _refused(book.check(code, datetime(2026, 3, 9, 7, tzinfo=CST)), "outside_schedule")
    assert _refused(book.check(code, datetime(2026, 3, 6, 7, tzinfo=CST)), "not_yet_valid")


@pytest.mark.req("R2", "L15")
def test_a_clear_code_moves_the_epoch_and_kills_every_older_code(book: OfflineCodeBook) -> None:
    guest, staff = _grant(slot=0), _grant(OfflineKind.PERMANENT, None, slot=1)
    old_codes = [_code(guest), _code(staff)]
    now = START + HOUR
    assert all(book.check(code, now).accepted for code in old_codes)
    clear = issue_clear_code(PRF, epoch=0, new_epoch=1)
    verdict = book.check(clear, now)
    assert verdict.outcome is OfflineOutcome.CLEARED
    assert verdict.changed
    assert not verdict.accepted
    assert book.epoch == 1
    for code in old_codes:
        refused = book.check(code, now)
        assert _refused(refused, "epoch_revoked")
        assert refused.grant is not None
    reissued = _code(_grant(OfflineKind.PERMANENT, None, slot=1, epoch=1))
    assert book.check(reissued, now).accepted
    typed_again = book.check(clear, now)  # harmless and idempotent
    assert typed_again.outcome is OfflineOutcome.CLEARED
    assert not typed_again.changed
    assert book.epoch == 1


@pytest.mark.req("R2", "L15")
def test_a_clear_code_revokes_exactly_one_serial(book: OfflineCodeBook) -> None:
    first, second = _grant(slot=0), _grant(slot=1)
    now = START + HOUR
    verdict = book.check(issue_clear_code(PRF, epoch=0, revoke_serial=first.serial), now)
    assert verdict.outcome is OfflineOutcome.CLEARED
    assert verdict.changed
    assert verdict.clear is not None
    assert verdict.clear.revoke_serial == first.serial
    assert _refused(book.check(_code(first), now), "revoked")
    assert book.check(_code(second), now).accepted
    assert book.epoch == 0


@pytest.mark.req("R14", "R2", "L15")
def test_a_frozen_persons_old_offline_code_is_refused_offline_and_online() -> None:
    """Frozen for arrears with a permanent code issued long before: the platform's answer
    offline is a clear code typed at the door, online a pushed revocation list or epoch."""
    tenant = _grant(OfflineKind.PERMANENT, None, slot=2)
    neighbour = _grant(OfflineKind.PERMANENT, None, slot=3)
    code, now = _code(tenant), START + timedelta(days=90)
    clear = issue_clear_code(PRF, epoch=0, revoke_serial=tenant.serial)

    typed = OfflineCodeBook(PRF)  # offline: staff type the clear code
    assert typed.check(code, now).accepted
    assert typed.check(clear, now).changed
    assert _refused(typed.check(code, now), "revoked")
    assert typed.check(_code(neighbour), now).accepted

    listed = OfflineCodeBook(PRF)  # online: the revocation list
    assert listed.revoke([tenant.serial])
    assert _refused(listed.check(code, now), "revoked")
    assert listed.revoke([tenant.serial, neighbour.serial], replace=True)  # whole list, again
    assert _refused(listed.check(_code(neighbour), now), "revoked")

    pushed = OfflineCodeBook(PRF)  # online: a new epoch, the others get new codes
    assert pushed.apply_epoch(1)
    assert not pushed.apply_epoch(1)
    assert not pushed.apply_epoch(0)
    assert _refused(pushed.check(code, now), "epoch_revoked")
    replacement = _grant(OfflineKind.PERMANENT, None, slot=3, epoch=1)
    assert pushed.check(_code(replacement), now).accepted


@pytest.mark.req("R2", "L15")
def test_a_newer_epochs_code_opens_and_moves_the_lock_within_three_epochs(
    book: OfflineCodeBook,
) -> None:
    """The platform moved on while the lock was offline: the first newer code typed revokes
    the older ones without any clear code."""
    now = START + HOUR
    old = _code(_grant(slot=0))
    verdict = book.check(_code(_grant(slot=1, epoch=2)), now)
    assert verdict.accepted
    assert verdict.changed
    assert book.epoch == 2
    assert _refused(book.check(old, now), "epoch_revoked")
    assert book.check(_code(_grant(slot=2, epoch=5)), now).accepted  # 2 + 3
    assert book.epoch == 5
    assert _refused(book.check(_code(_grant(slot=3, epoch=9)), now), "unknown_credential")
    # A newer code that does not open (not valid yet) does not move the lock.
    later = _grant(start=START + timedelta(days=3), slot=3, epoch=6)
    refused = book.check(_code(later), now)
    assert _refused(refused, "not_yet_valid")
    assert not refused.changed
    assert book.epoch == 5


@pytest.mark.req("R2", "L15")
def test_another_locks_codes_never_open() -> None:
    for row in v.GRANTS:
        grant = decode_offline_passcode(PRF, row.code, epoch=row.epoch)
        assert isinstance(grant, OfflineGrant)
        at = BASE + grant.first_hour * HOUR + 30 * MINUTE
        assert OfflineCodeBook(PRF, epoch=row.epoch).check(row.code, at).accepted
        other = OfflineCodeBook(OTHER_PRF, epoch=row.epoch)
        assert _refused(other.check(row.code, at), "unknown_credential")


@pytest.mark.req("R2", "L15")
def test_foreign_keypad_input_is_refused_cleanly(book: OfflineCodeBook) -> None:
    book.check(_code(_grant(OfflineKind.ONE_TIME, 4)), START + HOUR)
    before = book.to_dict()
    for text in [
        "",
        "abcdefghij",
        "12345",
        "12345678901",
        "1" * 1000,
        "１２３４５６７８９０",  # full-width digits
        "12345 67890",
        "+123456789",
        "-123456789",
        "1234567890\n",
        "٠١٢٣٤٥٦٧٨٩",  # Arabic-Indic digits
    ]:
        verdict = book.check(text, START + HOUR)
        assert _refused(verdict, "malformed")
        assert not verdict.changed
        assert verdict.grant is None
    assert book.to_dict() == before


@pytest.mark.req("R2", "L15")
def test_random_guesses_do_not_open_nor_move_the_lock() -> None:
    """5,000 random guesses of each length at a lock with live codes: by the bound of
    docs/offline-passcodes.md (≤ 1e-6 each) the expected number opened is ≤ 0.02."""
    rng = random.Random(7)
    lock = OfflineCodeBook(PRF, epoch=3)
    live = [_code(_grant(OfflineKind.PERMANENT, None, slot=slot, epoch=3)) for slot in range(4)]
    now = START + HOUR
    assert all(lock.check(code, now).accepted for code in live)
    opened = 0
    for digits in (10, 12, 14, 16):
        for _ in range(5_000):
            guess = f"{rng.randrange(10**digits):0{digits}d}"
            opened += lock.check(guess, now).accepted
    assert opened == 0
    assert lock.epoch == 3


@pytest.mark.req("R2", "L13")
def test_the_book_survives_to_dict_and_from_dict() -> None:
    book = OfflineCodeBook(PRF, epoch=4)
    now = START + HOUR
    one_time = _grant(OfflineKind.ONE_TIME, 24, slot=0, epoch=4)
    revoked = _grant(slot=1, epoch=4)
    assert book.check(_code(one_time), now).accepted
    book.revoke([revoked.serial], epoch=4)
    book.revoke([7], epoch=6)  # a pushed revocation of a later epoch's code
    state = json.loads(json.dumps(book.to_dict()))
    assert state["epoch"] == 4
    assert state["version"] == 1
    restored = OfflineCodeBook.from_dict(state, PRF)
    assert restored.to_dict() == book.to_dict()
    assert restored.epoch == 4
    assert restored.revoked == {(4, revoked.serial), (6, 7)}
    assert _refused(restored.check(_code(one_time), now), "already_used")
    assert _refused(restored.check(_code(revoked), now), "revoked")
    assert _refused(restored.check(_code(_grant(slot=2, epoch=3)), now), "epoch_revoked")
    for broken in (
        {},
        {**state, "version": 2},
        {**state, "epoch": -1},
        {**state, "epoch": True},
        {**state, "extra": 1},
        {**state, "revoked": [[4]]},
        {**state, "revoked": [[4, "1"]]},
        {**state, "used": [[4, 1]]},
        {**state, "revoked": [[4, s] for s in range(MAX_REVOKED + 1)]},
    ):
        with pytest.raises(IntegrityError):
            OfflineCodeBook.from_dict(broken, PRF)


@pytest.mark.req("R2", "L15")
def test_the_revocation_list_is_bounded_and_an_epoch_empties_it() -> None:
    assert MAX_REVOKED == 512
    lock = OfflineCodeBook(PRF, max_revoked=3)
    assert lock.revoke([1, 2, 3])
    with pytest.raises(OfflineBookFull):
        lock.revoke([4])
    assert lock.revoked == {(0, 1), (0, 2), (0, 3)}
    clear = issue_clear_code(PRF, epoch=0, revoke_serial=4)
    assert _refused(lock.check(clear, START), "store_full")
    assert lock.revoke([3, 4], replace=True)  # the platform dropped codes that expired
    assert lock.revoked == {(0, 3), (0, 4)}
    assert lock.revoke([1], epoch=0)
    assert lock.revoked == {(0, 1), (0, 3), (0, 4)}
    assert not lock.revoke([1])  # already there
    assert lock.apply_epoch(1)
    assert lock.revoked == frozenset()
    assert not lock.revoke([5], epoch=0)  # an older epoch's serials are moot
    with pytest.raises(InvalidInput):
        lock.revoke([-1])


@pytest.mark.req("R2", "L17")
def test_refusal_reasons_are_unlock_record_reasons() -> None:
    assert set(REFUSALS) <= set(REASONS)
