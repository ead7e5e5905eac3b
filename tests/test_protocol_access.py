"""The access-control wire contract (anju.protocol.access): sealed credential boxes, schedules,
eKey proofs, card answers and signed lock records — what either side must refuse."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from anju.kit.crypto import SM2PrivateKey
from anju.protocol.access import (
    CredentialKind,
    CredentialRecord,
    EKeyToken,
    Schedule,
    card_response,
    card_response_ok,
    check_ekey,
    decode_signer,
    ekey_proof_message,
    encode_signer,
    issue_ekey,
    open_credential,
    seal_credential,
    sign_record,
    verify_record,
)
from anju.protocol.certificates import CertKind
from anju.protocol.errors import ProtocolError
from tests.support.fake_gateway import Pki
from tests.support.lock_access import DAY, HOUR, T0, Issuer

pytestmark = pytest.mark.req("L3", "L9", "L15")

DEVICE = "ab" * 16
OTHER_DEVICE = "cd" * 16


def record(**changes: object) -> CredentialRecord:
    base = CredentialRecord(
        cred="pc-1",
        device=DEVICE,
        subject="guest-1",
        kind=CredentialKind.PASSCODE,
        secret=b"73915824",
        from_ms=T0,
        until_ms=T0 + DAY,
        issued_ms=T0,
        schedule=Schedule(0b1111111, 22 * 60, 6 * 60),
        uses=3,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def code_of(call: object) -> str:
    with pytest.raises(ProtocolError) as caught:
        call()  # type: ignore[operator]
    return caught.value.code


@pytest.fixture
def pki() -> Pki:
    return Pki()


@pytest.fixture
def lock_key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


def open_with(box: str, issuer: Issuer, lock_key: SM2PrivateKey, **kw: object) -> CredentialRecord:
    args: dict[str, object] = {
        "device_id": DEVICE,
        "cred_id": "pc-1",
        "decrypt": lock_key.decrypt,
        "signer": issuer.certificate(),
        "ca": issuer.pki.ca_key.public_key,
        "now_s": T0 // 1000,
    }
    args.update(kw)
    return open_credential(box, **args)  # type: ignore[arg-type]


def test_a_sealed_credential_opens_only_at_its_lock_under_its_id(
    pki: Pki, lock_key: SM2PrivateKey
) -> None:
    issuer = Issuer(pki)
    box = seal_credential(record(), device_public_key=lock_key.public_key, sign=issuer.key.sign)
    assert open_with(box, issuer, lock_key) == record()
    assert b"73915824" not in base64.b64decode(box)  # the secret is not in the box in clear
    other = SM2PrivateKey.generate()
    assert code_of(lambda: open_with(box, issuer, other)) == "access_malformed"
    assert code_of(lambda: open_with(box, issuer, lock_key, cred_id="pc-2")) == "access_malformed"
    assert code_of(lambda: open_with(box, issuer, lock_key, device_id=OTHER_DEVICE)) == (
        "access_malformed"
    )
    raw = bytearray(base64.b64decode(box))
    raw[-1] ^= 1
    assert code_of(lambda: open_with(base64.b64encode(raw).decode(), issuer, lock_key)) == (
        "access_malformed"
    )
    assert code_of(lambda: open_with("not base64!", issuer, lock_key)) == "access_malformed"
    assert code_of(lambda: open_with(base64.b64encode(b"ACB1").decode(), issuer, lock_key)) == (
        "access_malformed"
    )


def test_a_box_signed_by_anything_but_a_valid_access_certificate_of_the_ca_is_refused(
    pki: Pki, lock_key: SM2PrivateKey
) -> None:
    issuer = Issuer(pki)
    box = seal_credential(record(), device_public_key=lock_key.public_key, sign=issuer.key.sign)
    wrong_kind = Issuer(pki, key=issuer.key, kind=CertKind.FIRMWARE)
    other_ca = Issuer(Pki(), key=issuer.key)
    expired = Issuer(pki, key=issuer.key, not_before_s=T0 // 1000 - 99, not_after_s=T0 // 1000 - 1)
    for bad in (wrong_kind, other_ca, expired):
        assert code_of(lambda bad=bad: open_with(box, bad, lock_key, ca=pki.ca_key.public_key)) == (
            "access_bad_signer"
        )
    impostor = Issuer(pki)  # a valid ACCESS certificate, but of another key
    assert code_of(lambda: open_with(box, impostor, lock_key)) == "access_bad_signature"


def test_the_signer_certificate_round_trips_as_the_put_argument(pki: Pki) -> None:
    certificate = Issuer(pki).certificate()
    assert decode_signer(encode_signer(certificate)) == certificate
    assert code_of(lambda: decode_signer("AAAA")) == "access_malformed"
    assert code_of(lambda: decode_signer(42)) == "access_malformed"


def test_malformed_records_are_refused() -> None:
    good = record().to_json()
    assert CredentialRecord.from_json(good) == record()
    assert code_of(lambda: CredentialRecord.from_json({**good, "extra": 1})) == "access_malformed"
    assert code_of(lambda: CredentialRecord.from_json({**good, "kind": "iris"})) == (
        "access_malformed"
    )
    assert code_of(lambda: record(secret=b"12ab")) == "access_malformed"  # not digits
    assert code_of(lambda: record(until_ms=T0)) == "access_malformed"
    assert code_of(lambda: record(subject="张三")) == "access_malformed"  # ids, never names
    assert code_of(lambda: record(uses=0)) == "access_malformed"


@pytest.mark.req("L15")
def test_schedules_cover_windows_past_midnight_and_explicit_utc_offsets() -> None:
    # Sundays only, 23:00–01:00 China time: Monday 00:30 belongs to Sunday's window.
    sunday_night = Schedule(weekdays=1 << 6, start_minute=23 * 60, end_minute=60)
    sunday_2330_cst = T0 - DAY + 15 * HOUR + 30 * 60_000  # Sun 2026-03-01 15:30 UTC
    assert sunday_night.admits(sunday_2330_cst)
    assert sunday_night.admits(T0 - 8 * HOUR + 30 * 60_000)  # Mon 00:30 CST
    assert not sunday_night.admits(T0 - 7 * HOUR + 60_000)  # Mon 01:01 CST
    assert not sunday_night.admits(T0 + 15 * HOUR + 30 * 60_000)  # Mon 23:30: not a Sunday
    # The same wall-clock window in New York (UTC-5) is 13 hours later in UTC.
    new_york = Schedule(
        weekdays=1, start_minute=9 * 60, end_minute=17 * 60, utc_offset_minutes=-300
    )
    assert new_york.admits(T0 + 14 * HOUR)  # Mon 09:00 EST
    assert not new_york.admits(T0 + 13 * HOUR + 59 * 60_000)
    assert not new_york.admits(T0 + 22 * HOUR)  # 17:00 EST: the end is exclusive
    whole_day = Schedule(weekdays=0b1111111, start_minute=0, end_minute=1440)
    assert whole_day.admits(T0 + 23 * HOUR + 59 * 60_000)
    assert code_of(lambda: Schedule(1, 600, 600)) == "access_malformed"
    assert code_of(lambda: Schedule(0, 0, 60)) == "access_malformed"
    assert code_of(lambda: Schedule(1, 0, 60, utc_offset_minutes=900)) == "access_malformed"
    assert Schedule.from_json(sunday_night.to_json()) == sunday_night


def test_card_answers_bind_the_card_the_lock_and_the_challenge() -> None:
    key, challenge = bytes(range(16)), bytes(16)
    answer = card_response(key, uid="04a1b2c3", device_id=DEVICE, challenge=challenge)
    assert card_response_ok(key, answer, uid="04a1b2c3", device_id=DEVICE, challenge=challenge)
    assert not card_response_ok(
        key, answer, uid="04a1b2c3", device_id=OTHER_DEVICE, challenge=challenge
    )
    assert not card_response_ok(
        key, answer, uid="04a1b2c3", device_id=DEVICE, challenge=bytes(15) + b"\x01"
    )
    assert not card_response_ok(
        bytes(16), answer, uid="04a1b2c3", device_id=DEVICE, challenge=challenge
    )
    assert code_of(lambda: card_response(key, uid="04", device_id=DEVICE, challenge=bytes(8))) == (
        "access_malformed"
    )


@pytest.mark.req("L15")
def test_an_ekey_proves_the_holder_over_this_challenge_within_its_window(pki: Pki) -> None:
    issuer = Issuer(pki)
    phone = SM2PrivateKey.generate()
    token = EKeyToken("ek-1", DEVICE, "guest-1", phone.public_key.raw, T0, T0 + DAY, 0, T0)
    signed = issue_ekey(token, sign=issuer.key.sign)
    challenge, other = bytes(range(16)), bytes(range(1, 17))
    proof = phone.sign(ekey_proof_message(challenge, device_id=DEVICE, key_id="ek-1"))

    def check(**kw: object) -> EKeyToken:
        args: dict[str, object] = {
            "signer": issuer.certificate(),
            "ca": pki.ca_key.public_key,
            "device_id": DEVICE,
            "challenge": challenge,
            "now_ms": T0 + HOUR,
        }
        args.update(kw)
        return check_ekey(signed, proof, **args)  # type: ignore[arg-type]

    assert check() == token
    assert code_of(lambda: check(challenge=other)) == "access_bad_proof"
    assert code_of(lambda: check(device_id=OTHER_DEVICE)) == "access_wrong_device"
    assert code_of(lambda: check(now_ms=T0 - 1)) == "access_not_yet_valid"
    assert code_of(lambda: check(now_ms=T0 + DAY)) == "access_expired"
    assert code_of(lambda: check(signer=Issuer(pki).certificate())) == "access_bad_signature"
    outer = json.loads(base64.b64decode(signed))
    outer["tok"]["until"] += DAY  # extending one's own key
    stretched = base64.b64encode(json.dumps(outer).encode()).decode()
    assert (
        code_of(
            lambda: check_ekey(
                stretched,
                proof,
                signer=issuer.certificate(),
                ca=pki.ca_key.public_key,
                device_id=DEVICE,
                challenge=challenge,
                now_ms=T0 + HOUR,
            )
        )
        == "access_bad_signature"
    )


@pytest.mark.req("L9", "R2")
def test_lock_records_verify_only_with_the_device_key_and_for_the_device_they_name() -> None:
    device_key, other_key = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    rec = {"dev": DEVICE, "at": T0, "alarm": "tamper", "detail": None}
    data = sign_record(rec, sign=device_key.sign)
    assert verify_record(data, device_id=DEVICE, public_key=device_key.public_key) == rec
    assert (
        code_of(lambda: verify_record(data, device_id=DEVICE, public_key=other_key.public_key))
        == "access_bad_signature"
    )
    assert (
        code_of(
            lambda: verify_record(data, device_id=OTHER_DEVICE, public_key=device_key.public_key)
        )
        == "access_wrong_device"
    )
    altered = {"rec": {**rec, "alarm": "low_battery"}, "sig": data["sig"]}
    assert (
        code_of(lambda: verify_record(altered, device_id=DEVICE, public_key=device_key.public_key))
        == "access_bad_signature"
    )
    assert (
        code_of(
            lambda: verify_record({"rec": rec}, device_id=DEVICE, public_key=device_key.public_key)
        )
        == "access_malformed"
    )
    assert code_of(lambda: sign_record({"at": T0}, sign=device_key.sign)) == "access_malformed"
