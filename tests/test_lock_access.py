"""Access control in the reference lock: credentials installed, used, removed and frozen — all
verified on the lock itself, each step confirmed by a record signed in the lock's SE."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from anju.device.access import AccessVerdict, PhoneWallet, SimulatedCard
from anju.device.lock import LockFirmware
from anju.protocol.access import (
    DROP_COMMAND,
    FREEZE_COMMAND,
    PUT_COMMAND,
    RECEIPT_EVENT,
    REVOKE_COMMAND,
    UNFREEZE_COMMAND,
    UNLOCK_EVENT,
    WIPE_COMMAND,
    CredentialKind,
    EKeyToken,
    Schedule,
    card_secret,
)
from anju.protocol.certificates import CertKind
from anju.protocol.offline_grants import OfflineGrant, OfflineKind
from anju.protocol.offline_passcode import issue_offline_passcode, platform_prf
from tests.support.fake_gateway import MadeDevice, Pki, make_device
from tests.support.lock_access import (
    DAY,
    HOUR,
    T0,
    Issuer,
    LockClock,
    command,
    credential,
    make_lock,
    signed_records,
)

CODE = b"73915824"
OTHER_CODE = b"40628517"


@pytest.fixture
def pki() -> Pki:
    return Pki()


@pytest.fixture
def device(pki: Pki, tmp_path: Path) -> MadeDevice:
    return make_device(pki, tmp_path / "dev")


@pytest.fixture
def issuer(pki: Pki) -> Issuer:
    return Issuer(pki)


@pytest.fixture
def clock() -> LockClock:
    return LockClock()


@pytest.fixture
def lock(device: MadeDevice, tmp_path: Path, clock: LockClock) -> LockFirmware:
    return make_lock(device, tmp_path / "data", clock)


def files_contain(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def put(
    lock: LockFirmware, issuer: Issuer, device: MadeDevice, *args: Any, **kwargs: Any
) -> tuple[bool, str | None]:
    return await command(
        lock, PUT_COMMAND, issuer.put_args(credential(device, *args, **kwargs), device)
    )


@pytest.mark.req("L9", "L13", "L15")
async def test_a_pushed_passcode_opens_only_with_its_digits_and_is_never_at_rest_in_clear(
    lock: LockFirmware, issuer: Issuer, device: MadeDevice, tmp_path: Path
) -> None:
    assert await put(lock, issuer, device, "pc-1", "guest-1", CredentialKind.PASSCODE, CODE) == (
        True,
        None,
    )
    [receipt] = signed_records(lock, device, RECEIPT_EVENT)
    assert (receipt["op"], receipt["cred"], receipt["state"], receipt["subject"]) == (
        "put",
        "pc-1",
        "installed",
        "guest-1",
    )
    assert lock.locked
    wrong = lock.access.enter_passcode(OTHER_CODE.decode())
    assert (wrong.granted, wrong.reason) == (False, "unknown_credential")
    assert lock.locked
    right = lock.access.enter_passcode(CODE.decode())
    assert (right.granted, right.cred, right.subject) == (True, "pc-1", "guest-1")
    assert not lock.locked
    records = signed_records(lock, device, UNLOCK_EVENT)
    assert [(r["method"], r["result"], r["reason"], r["cred"]) for r in records] == [
        ("passcode", "denied", "unknown_credential", None),
        ("passcode", "granted", None, "pc-1"),
    ]
    assert files_contain(tmp_path, CODE) == []
    assert files_contain(tmp_path, CODE.hex().encode()) == []


@pytest.mark.req("L15", "L9")
async def test_a_card_answers_the_challenge_and_a_clone_of_its_uid_is_refused(
    lock: LockFirmware, issuer: Issuer, device: MadeDevice, tmp_path: Path
) -> None:
    card = SimulatedCard("04a1b2c3d4e5f6")
    ok = await put(
        lock,
        issuer,
        device,
        "card-1",
        "guest-1",
        CredentialKind.CARD,
        card_secret(card.uid, card.key),
    )
    assert ok == (True, None)
    clone = SimulatedCard(card.uid)  # the UID copied, the key unknown
    refused = lock.access.present_card(clone)
    assert (refused.granted, refused.reason, refused.cred) == (False, "bad_response", "card-1")
    assert refused.subject is None  # a clone proves nobody
    assert lock.access.lockout.failures == 1  # counted as a wrong attempt
    unknown = lock.access.present_card(SimulatedCard("0badc0de"))
    assert (unknown.granted, unknown.reason) == (False, "unknown_credential")
    granted = lock.access.present_card(card)
    assert (granted.granted, granted.subject) == (True, "guest-1")
    assert lock.access.lockout.failures == 0  # a success resets the counter
    assert files_contain(tmp_path, card.key) == []
    assert files_contain(tmp_path, card.key.hex().encode()) == []


@pytest.mark.req("L15", "L9")
async def test_validity_schedule_and_use_count_are_enforced_on_the_lock_clock(
    device: MadeDevice, issuer: Issuer, tmp_path: Path, clock: LockClock
) -> None:
    lock = make_lock(device, tmp_path / "data", clock)
    # Weekdays 22:00–06:00 China time (past midnight), from tomorrow, two uses.
    night = Schedule(weekdays=0b0011111, start_minute=22 * 60, end_minute=6 * 60)
    await put(
        lock,
        issuer,
        device,
        "pc-night",
        "staff-1",
        CredentialKind.PASSCODE,
        CODE,
        from_ms=T0 + DAY,
        until_ms=T0 + 10 * DAY,
        schedule=night,
        uses=2,
    )
    assert lock.access.enter_passcode(CODE.decode()).reason == "not_yet_valid"
    # Tue 2026-03-03 23:30 CST = 15:30 UTC: inside the window.
    clock.ms = T0 + DAY + 15 * HOUR + 30 * 60_000
    assert lock.access.enter_passcode(CODE.decode()).granted
    # Wed 01:00 CST = Tue 17:00 UTC: still Tuesday's window, past midnight.
    clock.ms = T0 + DAY + 17 * HOUR
    assert lock.access.enter_passcode(CODE.decode()).granted
    clock.ms += 60_000
    assert lock.access.enter_passcode(CODE.decode()).reason == "uses_exhausted"
    # The spent uses survive a power cycle.
    again = make_lock(device, tmp_path / "data", clock)
    assert again.access.enter_passcode(CODE.decode()).reason == "uses_exhausted"
    # Sat 12:00 CST: outside the window (weekdays only, night only).
    await put(
        again,
        issuer,
        device,
        "pc-day",
        "staff-2",
        CredentialKind.PASSCODE,
        OTHER_CODE,
        from_ms=T0,
        until_ms=T0 + 10 * DAY,
        schedule=night,
    )
    clock.ms = T0 + 5 * DAY + 4 * HOUR
    assert again.access.enter_passcode(OTHER_CODE.decode()).reason == "outside_schedule"
    clock.ms = T0 + 10 * DAY
    assert again.access.enter_passcode(OTHER_CODE.decode()).reason == "expired"


@pytest.mark.req("L15", "L9")
async def test_a_lock_clock_drifting_minutes_judges_by_its_own_clock(
    device: MadeDevice, issuer: Issuer, tmp_path: Path
) -> None:
    """A lock running 3 minutes fast refuses a credential 3 minutes early: the lock is the
    authority at the door, and its clock is set again at each session (docs/device-sdk.md)."""
    fast = LockClock(T0 + DAY - 60_000 + 3 * 60_000)  # platform time: 1 min before expiry
    lock = make_lock(device, tmp_path / "data", fast)
    await put(lock, issuer, device, "pc-1", "guest-1", CredentialKind.PASSCODE, CODE)
    assert lock.access.enter_passcode(CODE.decode()).reason == "expired"
    fast.ms -= 3 * 60_000  # the clock corrected
    assert lock.access.enter_passcode(CODE.decode()).granted


@pytest.mark.req("L3", "L9", "L15")
async def test_refused_boxes_are_acknowledged_with_the_reason_and_a_signed_refused_receipt(
    pki: Pki, device: MadeDevice, issuer: Issuer, lock: LockFirmware, tmp_path: Path
) -> None:
    record = credential(device, "pc-1", "guest-1", CredentialKind.PASSCODE, CODE)
    args = issuer.put_args(record, device)

    tampered = dict(
        args,
        box=args["box"][:-6]
        + ("AAAA" if args["box"][-6:-2] != "AAAA" else "BBBB")
        + args["box"][-2:],
    )
    assert await command(lock, PUT_COMMAND, tampered) == (False, "malformed")
    other_id = dict(args, cred="pc-2")  # a box for another credential id
    assert await command(lock, PUT_COMMAND, other_id) == (False, "malformed")
    other_lock = make_device(pki, tmp_path / "other")
    for_other = issuer.put_args(
        credential(other_lock, "pc-1", "guest-1", CredentialKind.PASSCODE, CODE), other_lock
    )
    assert await command(lock, PUT_COMMAND, for_other) == (False, "malformed")
    firmware_signer = Issuer(pki, key=issuer.key, kind=CertKind.FIRMWARE)
    assert await command(lock, PUT_COMMAND, firmware_signer.put_args(record, device)) == (
        False,
        "bad_signer",
    )
    foreign = Issuer(Pki(), key=issuer.key)  # an ACCESS certificate of another CA
    assert await command(lock, PUT_COMMAND, foreign.put_args(record, device)) == (
        False,
        "bad_signer",
    )
    expired = Issuer(pki, key=issuer.key, not_before_s=T0 // 1000 - 900, not_after_s=T0 // 1000 - 1)
    assert await command(lock, PUT_COMMAND, expired.put_args(record, device)) == (
        False,
        "bad_signer",
    )
    impostor = issuer.put_args(record, device)
    impostor["cert"] = Issuer(pki).put_args(record, device)["cert"]  # certifies another key
    assert await command(lock, PUT_COMMAND, impostor) == (False, "bad_signature")
    assert await command(lock, PUT_COMMAND, {"cred": "pc-1"}) == (False, "malformed")

    receipts = signed_records(lock, device, RECEIPT_EVENT)
    assert [(r["state"], r["code"]) for r in receipts] == [
        ("refused", "malformed"),
        ("refused", "malformed"),
        ("refused", "malformed"),
        ("refused", "bad_signer"),
        ("refused", "bad_signer"),
        ("refused", "bad_signer"),
        ("refused", "bad_signature"),
        ("refused", "malformed"),
    ]
    assert lock.access.store.state.credentials == {}
    assert not lock.access.enter_passcode(CODE.decode()).granted


@pytest.mark.req("L15")
async def test_a_put_replaces_by_id_refuses_duplicates_and_a_full_store(
    device: MadeDevice, issuer: Issuer, tmp_path: Path, clock: LockClock
) -> None:
    lock = make_lock(device, tmp_path / "data", clock, capacity=2)
    await put(lock, issuer, device, "pc-1", "guest-1", CredentialKind.PASSCODE, CODE)
    await put(lock, issuer, device, "pc-1", "guest-1", CredentialKind.PASSCODE, OTHER_CODE)
    assert lock.access.enter_passcode(CODE.decode()).reason == "unknown_credential"
    assert lock.access.enter_passcode(OTHER_CODE.decode()).granted
    assert await put(
        lock, issuer, device, "pc-2", "guest-2", CredentialKind.PASSCODE, OTHER_CODE
    ) == (False, "duplicate")
    assert await put(lock, issuer, device, "pc-2", "guest-2", CredentialKind.PASSCODE, CODE) == (
        True,
        None,
    )
    assert await put(
        lock, issuer, device, "pc-3", "guest-3", CredentialKind.PASSCODE, b"11223344"
    ) == (False, "store_full")
    assert await put(
        lock, issuer, device, "face-1", "guest-3", CredentialKind.FACE, b"template"
    ) == (False, "unsupported")


@pytest.mark.req("L15", "L9")
async def test_an_ekey_opens_once_per_challenge_and_replays_are_refused(
    device: MadeDevice, issuer: Issuer, lock: LockFirmware, clock: LockClock, pki: Pki
) -> None:
    phone = PhoneWallet()
    token = issuer.ekey(
        EKeyToken(
            "ek-1", device.device_id, "guest-1", phone.holder_key, T0 - HOUR, T0 + DAY, 0, T0 - HOUR
        )
    )
    signer = issuer.certificate()
    challenge = lock.access.ekey_challenge()
    proof = phone.prove(challenge, device_id=device.device_id, key_id="ek-1")
    first = lock.access.present_ekey(token, proof, challenge, signer=signer)
    assert (first.granted, first.cred, first.subject) == (True, "ek-1", "guest-1")
    replay = lock.access.present_ekey(token, proof, challenge, signer=signer)
    assert (replay.granted, replay.reason) == (False, "stale_challenge")
    # A proof recorded for one challenge does not answer the next one.
    fresh = lock.access.ekey_challenge()
    assert lock.access.present_ekey(token, proof, fresh, signer=signer).reason == "stale_challenge"
    # An unanswered challenge expires.
    late = lock.access.ekey_challenge()
    clock.advance(31)
    late_proof = phone.prove(late, device_id=device.device_id, key_id="ek-1")
    assert (
        lock.access.present_ekey(token, late_proof, late, signer=signer).reason == "stale_challenge"
    )
    # Someone else's phone with a copied QR code cannot prove the holder's key.
    thief = PhoneWallet()
    c = lock.access.ekey_challenge()
    stolen = lock.access.present_ekey(
        token, thief.prove(c, device_id=device.device_id, key_id="ek-1"), c, signer=signer
    )
    assert (stolen.granted, stolen.reason) == (False, "stale_challenge")
    assert lock.access.lockout.failures == 4  # each of those was a wrong attempt
    c = lock.access.ekey_challenge()
    p = phone.prove(c, device_id=device.device_id, key_id="ek-1")
    assert lock.access.present_ekey(token, p, c, signer=signer).granted
    # Without a certificate at the door the lock uses the signers it verified in puts.
    c = lock.access.ekey_challenge()
    p = phone.prove(c, device_id=device.device_id, key_id="ek-1")
    assert lock.access.present_ekey(token, p, c).reason == "bad_signer"
    await put(lock, issuer, device, "pc-1", "guest-2", CredentialKind.PASSCODE, CODE)
    c = lock.access.ekey_challenge()
    p = phone.prove(c, device_id=device.device_id, key_id="ek-1")
    assert lock.access.present_ekey(token, p, c).granted
    # A token for another lock.
    other = issuer.ekey(
        EKeyToken("ek-2", "0" * 32, "guest-1", phone.holder_key, T0 - HOUR, T0 + DAY, 0, T0 - HOUR)
    )
    c = lock.access.ekey_challenge()
    p = phone.prove(c, device_id=device.device_id, key_id="ek-2")
    assert lock.access.present_ekey(other, p, c, signer=signer).reason == "wrong_device"
    # Forged by a key the CA never certified.
    forged = Issuer(pki).ekey(
        EKeyToken(
            "ek-3", device.device_id, "guest-1", phone.holder_key, T0 - HOUR, T0 + DAY, 0, T0 - HOUR
        )
    )
    c = lock.access.ekey_challenge()
    p = phone.prove(c, device_id=device.device_id, key_id="ek-3")
    assert lock.access.present_ekey(forged, p, c, signer=signer).reason == "bad_signature"


@pytest.mark.req("L15", "R14")
async def test_revoked_and_epoch_revoked_ekeys_and_frozen_holders_are_refused(
    device: MadeDevice, issuer: Issuer, lock: LockFirmware
) -> None:
    phone = PhoneWallet()
    signer = issuer.certificate()

    def present(key_id: str, subject: str, epoch: int) -> AccessVerdict:
        token = issuer.ekey(
            EKeyToken(
                key_id,
                device.device_id,
                subject,
                phone.holder_key,
                T0 - HOUR,
                T0 + DAY,
                epoch,
                T0 - HOUR,
            )
        )
        c = lock.access.ekey_challenge()
        p = phone.prove(c, device_id=device.device_id, key_id=key_id)
        return lock.access.present_ekey(token, p, c, signer=signer)

    assert present("ek-1", "guest-1", 0).granted
    assert await command(lock, REVOKE_COMMAND, {"epoch": 1, "offline": [], "ekeys": ["ek-9"]}) == (
        True,
        None,
    )
    assert present("ek-1", "guest-1", 0).reason == "epoch_revoked"
    assert present("ek-9", "guest-1", 1).reason == "revoked"
    assert present("ek-2", "guest-1", 1).granted
    await command(lock, FREEZE_COMMAND, {"subject": "guest-1"})
    assert present("ek-2", "guest-1", 1).reason == "frozen"
    await command(lock, UNFREEZE_COMMAND, {"subject": "guest-1"})
    assert present("ek-2", "guest-1", 1).granted
    # An older epoch never lowers the lock's.
    await command(lock, REVOKE_COMMAND, {"epoch": 0, "offline": [], "ekeys": []})
    assert present("ek-1", "guest-1", 0).reason == "epoch_revoked"
    receipts = signed_records(lock, device, RECEIPT_EVENT)
    assert [(r["op"], r["state"]) for r in receipts] == [
        ("revoke", "applied"),
        ("freeze", "applied"),
        ("unfreeze", "applied"),
        ("revoke", "applied"),
    ]
    assert lock.access.lockout.failures == 0  # refusals of genuine keys are not guesses


@pytest.mark.req("R14", "L15", "L17")
async def test_a_frozen_person_is_refused_everywhere_including_an_old_offline_code(
    device: MadeDevice, issuer: Issuer, tmp_path: Path, clock: LockClock
) -> None:
    # Real offline codes, computed as the platform does from its copy of the lock's root key.
    prf = platform_prf(device.root_key)
    start = datetime.fromtimestamp((T0 - HOUR) / 1000, UTC)
    period = OfflineGrant(OfflineKind.PERIOD, start, start + timedelta(days=2))
    once = OfflineGrant(OfflineKind.ONE_TIME, start, start + timedelta(days=1), slot=1)
    code, one_time, serial = (
        issue_offline_passcode(prf, period),
        issue_offline_passcode(prf, once),
        period.serial,
    )
    lock = make_lock(device, tmp_path / "data", clock)
    card = SimulatedCard("04aa55aa55")
    await put(lock, issuer, device, "pc-1", "tenant-1", CredentialKind.PASSCODE, CODE)
    await put(
        lock,
        issuer,
        device,
        "card-1",
        "tenant-1",
        CredentialKind.CARD,
        card_secret(card.uid, card.key),
    )
    offline = lock.access.enter_passcode(code)
    assert (offline.granted, offline.method.value, offline.serial) == (
        True,
        "offline_passcode",
        serial,
    )
    assert await command(lock, FREEZE_COMMAND, {"subject": "tenant-1"}) == (True, None)
    assert lock.access.enter_passcode(CODE.decode()).reason == "frozen"
    assert lock.access.present_card(card).reason == "frozen"
    # The platform sends the frozen person's offline serials along.
    await command(lock, REVOKE_COMMAND, {"epoch": 0, "offline": [serial], "ekeys": []})
    refused = lock.access.enter_passcode(code)
    assert (refused.granted, refused.reason, refused.serial) == (False, "revoked", serial)
    # One-time codes are spent durably; the revocation survives a power cycle.
    assert lock.access.enter_passcode(one_time).granted
    again = make_lock(device, tmp_path / "data", clock)
    assert again.access.enter_passcode(one_time).reason == "already_used"
    assert again.access.enter_passcode(code).reason == "revoked"
    assert again.access.enter_passcode(CODE.decode()).reason == "frozen"
    await command(again, UNFREEZE_COMMAND, {"subject": "tenant-1"})
    assert again.access.enter_passcode(CODE.decode()).granted
    records = signed_records(again, device, UNLOCK_EVENT)
    assert ("offline_passcode", "denied", "revoked", serial) in [
        (r["method"], r["result"], r["reason"], r["serial"]) for r in records
    ]


@pytest.mark.req("L5", "L13", "L15")
async def test_drop_and_wipe_remove_a_persons_credentials_in_both_slots_and_confirm(
    device: MadeDevice, issuer: Issuer, lock: LockFirmware, tmp_path: Path
) -> None:
    card = SimulatedCard("04c0ffee00")
    await put(lock, issuer, device, "pc-1", "guest-1", CredentialKind.PASSCODE, CODE)
    await put(
        lock,
        issuer,
        device,
        "card-1",
        "guest-1",
        CredentialKind.CARD,
        card_secret(card.uid, card.key),
    )
    await put(lock, issuer, device, "pc-2", "guest-2", CredentialKind.PASSCODE, OTHER_CODE)
    assert await command(lock, DROP_COMMAND, {"cred": "nope"}) == (True, None)
    assert await command(lock, WIPE_COMMAND, {"subject": "guest-1"}) == (True, None)
    assert lock.access.enter_passcode(CODE.decode()).reason == "unknown_credential"
    assert lock.access.present_card(card).reason == "unknown_credential"
    assert lock.access.enter_passcode(OTHER_CODE.decode()).granted
    assert await command(lock, DROP_COMMAND, {"cred": "pc-2"}) == (True, None)
    assert lock.access.enter_passcode(OTHER_CODE.decode()).reason == "unknown_credential"
    receipts = signed_records(lock, device, RECEIPT_EVENT)[3:]
    assert [(r["op"], r["cred"], r["subject"], r["state"], r["code"]) for r in receipts] == [
        ("drop", "nope", None, "removed", "not_found"),
        ("wipe", "pc-1", "guest-1", "removed", None),
        ("wipe", "card-1", "guest-1", "removed", None),
        ("wipe", None, "guest-1", "applied", None),
        ("drop", "pc-2", "guest-2", "removed", None),
    ]
    # Neither slot of the sealed store still holds anything of guest-1 (opened with the SE).
    store = lock.access.store._store
    payloads = [store._parse(0), store._parse(1)]
    assert all(p is not None for p in payloads)
    for slot in payloads:
        assert slot is not None
        assert b"guest-1" not in slot.payload
        assert card.uid.encode() not in slot.payload
    assert files_contain(tmp_path, b"guest-1") == []


@pytest.mark.req("L15", "L9")
async def test_remote_and_inside_openings_are_recorded_and_signed(
    device: MadeDevice, lock: LockFirmware
) -> None:
    assert await command(lock, "unlock", {}) == (True, None)
    lock.set_locked(True, by="test")
    assert lock.access.inside_handle().granted
    records = signed_records(lock, device, UNLOCK_EVENT)
    assert [(r["method"], r["result"], r["dev"]) for r in records] == [
        ("remote", "granted", device.device_id),
        ("inside", "granted", device.device_id),
    ]
