"""The software secure element: keys made and used inside, locked after manufacture, PIN access
control, tamper response, sealed state bound to its SE (R19, L14, L16, R18)."""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from anju.device import (
    EventBuffer,
    FactoryRecord,
    KeyUsage,
    Lifecycle,
    SecureElementError,
    SoftwareSecureElement,
)
from anju.device import secure_element as se_module
from anju.errors import IntegrityError
from anju.kit.crypto import SM2PrivateKey, hkdf_sm3, hmac_sm3, sm3, sm4_gcm_decrypt

PIN = b"firmware-pairing-secret-0001"


class PowerLoss(BaseException):
    """The process dies here (not an Exception: nothing may catch it)."""


def new_id() -> str:
    return secrets.token_hex(16)


def manufacture(
    path: Path, device_id: str | None = None, **kwargs: Any
) -> tuple[SoftwareSecureElement, FactoryRecord]:
    se, record = SoftwareSecureElement.manufacture(
        path, device_id=device_id or new_id(), pin=PIN, **kwargs
    )
    se.verify_pin(PIN)
    return se, record


def read_fuses(path: Path) -> tuple[bytes, bytes, int]:
    """The documented fuses.bin layout, parsed independently of the implementation."""
    data = (path / "fuses.bin").read_bytes()
    assert len(data) == 46
    magic, fmt, personalised, se_id, key = struct.unpack(">4sBB16s16s", data[:38])
    assert (magic, fmt) == (b"ASEF", 1)
    assert data[38:] == sm3(data[:38])[:8]
    return se_id, key, personalised


def open_slot(path: Path, slot: str, key: bytes, se_id: bytes) -> bytes:
    """Decrypt one state slot per the documented record layout."""
    data = (path / f"state.{slot}").read_bytes()
    header, sealed = data[:20], data[20:]
    return sm4_gcm_decrypt(key, sealed[:12], sealed[12:], header + b"anju/se-state/v1" + se_id)


def expect(code: str, fn: Callable[[], object]) -> SecureElementError:
    with pytest.raises(SecureElementError) as info:
        fn()
    assert info.value.code == code, info.value
    return info.value


# --- manufacture and the locked state ---------------------------------------------------------


@pytest.mark.req("R19", "R18", "L14")
def test_manufacture_returns_one_time_record_and_locks(tmp_path: Path) -> None:
    device_id = new_id()
    se, record = manufacture(tmp_path / "se", device_id)
    assert se.lifecycle is Lifecycle.LOCKED
    assert record.device_id == device_id == se.device_id
    assert record.se_id == se.se_id
    assert len(bytes.fromhex(se.se_id)) == 16
    assert record.public_key == se.public_key
    assert len(record.root_key) == 16
    assert record.se_version == se.version == "anju-soft-se/1.0"
    assert record.root_key.hex() not in repr(record)  # not printed by accident
    # Manufacture happens once: no second FactoryRecord, ever.
    expect(
        "se_already_manufactured",
        lambda: SoftwareSecureElement.manufacture(tmp_path / "se", device_id=device_id, pin=PIN),
    )


@pytest.mark.req("R19", "L13", "L14")
def test_root_and_private_key_cannot_be_read_out(tmp_path: Path) -> None:
    path = tmp_path / "se"
    se, record = manufacture(path)
    secret_values = [record.root_key]
    # Every public attribute and zero-argument method of the SE, plus results of operations:
    seen: list[object] = [se.info(), se.secret_names(), repr(se)]
    for name in dir(se):
        if name.startswith("_") or name == "logout":
            continue
        value = getattr(se, name)
        if callable(value):
            try:
                value = value()
            except TypeError:
                continue  # needs arguments
        seen.append(value)
    blob = repr(seen).encode() + b"".join(v for v in seen if isinstance(v, bytes))
    for secret in secret_values:
        assert secret not in blob
        assert secret.hex().encode() not in blob
    # Nothing on disk holds the root key in clear.
    for file in path.iterdir():
        content = file.read_bytes()
        assert record.root_key not in content
        assert record.root_key.hex().encode() not in content
    # The SE remains usable and still refuses a second manufacture after all those calls.
    assert record.public_key.verify(b"m", se.sign(b"m"))


@pytest.mark.req("R18", "L14")
def test_root_keys_are_unique_per_device_even_for_same_ids(tmp_path: Path) -> None:
    device_id = new_id()
    _, first = manufacture(tmp_path / "a", device_id)
    _, second = manufacture(tmp_path / "b", device_id)
    assert first.root_key != second.root_key
    assert first.public_key != second.public_key
    assert first.se_id != second.se_id


@pytest.mark.req("R18", "L16")
def test_sign_verifies_with_public_key(tmp_path: Path) -> None:
    se, record = manufacture(tmp_path / "se")
    signature = se.sign(b"anju/hello/v1 transcript")
    assert record.public_key.verify(b"anju/hello/v1 transcript", signature)
    assert not record.public_key.verify(b"anju/hello/v1 transcripT", signature)


@pytest.mark.req("R18", "L14", "L16")
def test_decrypt_sm2_ciphertext_for_the_se_key(tmp_path: Path) -> None:
    se, record = manufacture(tmp_path / "se")
    kp = os.urandom(32)
    assert se.decrypt(record.public_key.encrypt(kp)) == kp
    other = SM2PrivateKey.generate().public_key.encrypt(kp)
    with pytest.raises(IntegrityError) as info:  # the protocol's DeviceKeyStore contract
        se.decrypt(other)
    assert isinstance(info.value, SecureElementError)
    assert info.value.code == "se_decrypt_failed"
    assert se.info().failures == 1


@pytest.mark.req("R18", "L14")
def test_session_keys_match_the_platforms_computation_from_the_factory_copy(
    tmp_path: Path,
) -> None:
    se, record = manufacture(tmp_path / "se")
    kp, salt, info = os.urandom(32), os.urandom(32), b"anju/session/v1" + os.urandom(40)
    okm = hkdf_sm3(record.root_key + kp, length=32, salt=salt, info=info)
    assert se.derive_session_keys(kp, salt, info) == (okm[:16], okm[16:])
    assert se.derive_session_keys(os.urandom(32), salt, info) != (okm[:16], okm[16:])
    expect("se_bad_input", lambda: se.derive_session_keys(kp[:16], salt, info))


@pytest.mark.req("R18")
def test_root_hmac_matches_platform_derivation(tmp_path: Path) -> None:
    se, record = manufacture(tmp_path / "se")
    key = hkdf_sm3(record.root_key, length=32, info=b"anju/se/hmac/v1:offline-code")
    assert se.hmac("offline-code", b"2025-01-01") == hmac_sm3(key, b"2025-01-01")
    assert se.hmac("other", b"2025-01-01") != se.hmac("offline-code", b"2025-01-01")
    expect("se_bad_input", lambda: se.hmac("Bad Label", b""))


@pytest.mark.req("R19", "L13")
def test_reopen_from_disk_gives_same_key_and_behaviour(tmp_path: Path) -> None:
    path = tmp_path / "se"
    se, record = manufacture(path)
    kp = os.urandom(32)
    keys = se.derive_session_keys(kp, b"s", b"i")
    reopened = SoftwareSecureElement.open(path)
    assert reopened.public_key == record.public_key
    assert (reopened.se_id, reopened.device_id) == (record.se_id, record.device_id)
    expect("se_pin_required", lambda: reopened.sign(b"m"))  # access control survives reboot
    reopened.verify_pin(PIN)
    assert record.public_key.verify(b"m", reopened.sign(b"m"))
    assert reopened.derive_session_keys(kp, b"s", b"i") == keys
    assert reopened.decrypt(record.public_key.encrypt(b"k" * 32)) == b"k" * 32


@pytest.mark.req("R19")
def test_key_usage_flags(tmp_path: Path) -> None:
    se, _ = manufacture(tmp_path / "se")
    assert se.key_usage("device") == KeyUsage.SIGN | KeyUsage.DECRYPT
    assert KeyUsage.DERIVE not in se.key_usage("device")
    assert se.key_usage("root") == KeyUsage.DERIVE | KeyUsage.HMAC
    assert KeyUsage.SIGN not in se.key_usage("root")


# --- secrets ----------------------------------------------------------------------------------


@pytest.mark.req("R19", "L13", "L14")
def test_secrets_are_used_inside_and_wiped_from_both_slots(tmp_path: Path) -> None:
    path = tmp_path / "se"
    se, _ = manufacture(path)
    value = b"offline-passcode-seed-" + os.urandom(8)
    se.store_secret("lock/offline", value)
    assert se.hmac_with_secret("lock/offline", b"t=1") == hmac_sm3(value, b"t=1")
    expect("se_usage_denied", lambda: se.verify_secret("lock/offline", value))
    expect("se_secret_exists", lambda: se.store_secret("lock/offline", b"x"))

    se.store_secret("admin-code", b"246810", usage=KeyUsage.VERIFY)
    assert se.verify_secret("admin-code", b"246810")
    assert not se.verify_secret("admin-code", b"246811")
    expect("se_usage_denied", lambda: se.hmac_with_secret("admin-code", b"probe"))
    expect("se_bad_input", lambda: se.store_secret("x", b"v", usage=KeyUsage.SIGN))
    assert se.secret_names() == ["admin-code", "lock/offline"]

    se_id, key, _ = read_fuses(path)
    assert value.hex().encode() in open_slot(path, "a", key, se_id)
    se.delete_secret("lock/offline")
    expect("se_secret_not_found", lambda: se.hmac_with_secret("lock/offline", b"t=1"))
    for slot in ("a", "b"):  # no stale copy left in the older slot
        assert value.hex().encode() not in open_slot(path, slot, key, se_id)
    reopened = SoftwareSecureElement.open(path)
    reopened.verify_pin(PIN)
    assert reopened.secret_names() == ["admin-code"]


# --- access control ---------------------------------------------------------------------------


@pytest.mark.req("R19", "L16")
def test_operations_need_the_pin(tmp_path: Path) -> None:
    path = tmp_path / "se"
    se, _ = manufacture(path)
    se.logout()
    for call in (
        lambda: se.sign(b"m"),
        lambda: se.decrypt(b"c"),
        lambda: se.derive_session_keys(b"k" * 32, b"", b""),
        lambda: se.hmac("x", b""),
        lambda: se.store_secret("x", b"v"),
        lambda: se.storage_sealer("events"),
    ):
        expect("se_pin_required", call)
    assert se.public_key is not None  # public information needs no PIN


@pytest.mark.req("R19", "L16")
def test_wrong_pin_tries_persist_and_exhaustion_wipes(tmp_path: Path) -> None:
    path = tmp_path / "se"
    SoftwareSecureElement.manufacture(path, device_id=new_id(), pin=PIN, pin_tries=3)
    se = SoftwareSecureElement.open(path)
    assert expect("se_wrong_pin", lambda: se.verify_pin(b"0000")).details == {"tries_left": 2}
    # A reboot does not give the tries back.
    se = SoftwareSecureElement.open(path)
    assert se.info().pin_tries_left == 2
    assert expect("se_wrong_pin", lambda: se.verify_pin(b"1111")).details == {"tries_left": 1}
    se.verify_pin(PIN)  # the right PIN resets the counter
    assert se.info().pin_tries_left == 3
    se.logout()
    for guess in (b"a000", b"b000"):
        expect("se_wrong_pin", functools.partial(se.verify_pin, guess))
    expect("se_zeroized", lambda: se.verify_pin(b"c000"))
    assert se.lifecycle is Lifecycle.ZEROIZED
    expect("se_zeroized", lambda: se.verify_pin(PIN))
    assert not (path / "fuses.bin").exists()
    expect("se_zeroized", lambda: SoftwareSecureElement.open(path).verify_pin(PIN))


@pytest.mark.req("R19", "L16")
def test_pin_try_is_counted_before_comparison(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cutting power while a guess is compared does not save the try."""
    path = tmp_path / "se"
    SoftwareSecureElement.manufacture(path, device_id=new_id(), pin=PIN, pin_tries=3)
    se = SoftwareSecureElement.open(path)

    def cut(*_: object) -> bytes:
        raise PowerLoss

    monkeypatch.setattr(se_module, "hmac_sm3", cut)
    with pytest.raises(PowerLoss):
        se.verify_pin(b"guess")
    monkeypatch.undo()
    assert SoftwareSecureElement.open(path).info().pin_tries_left == 2


# --- tamper response --------------------------------------------------------------------------


def all_operations(se: SoftwareSecureElement) -> list[Callable[[], object]]:
    return [
        lambda: se.public_key,
        lambda: se.se_id,
        lambda: se.device_id,
        lambda: se.version,
        se.info,
        lambda: se.verify_pin(PIN),
        lambda: se.sign(b"m"),
        lambda: se.decrypt(b"c"),
        lambda: se.derive_session_keys(b"k" * 32, b"", b""),
        lambda: se.hmac("x", b""),
        lambda: se.store_secret("y", b"v"),
        lambda: se.hmac_with_secret("x", b""),
        lambda: se.verify_secret("x", b""),
        lambda: se.delete_secret("x"),
        se.secret_names,
        lambda: se.key_usage("device"),
        lambda: se.storage_sealer("events"),
        lambda: se.report_failure("probe"),
        se.clear_failures,
    ]


@pytest.mark.req("L16", "L14", "R19")
def test_zeroize_destroys_keys_and_every_call_fails(tmp_path: Path) -> None:
    path = tmp_path / "se"
    se, _ = manufacture(path)
    se.store_secret("x", b"secret")
    sealer = se.storage_sealer("events")
    se.zeroize("tamper switch")
    assert se.lifecycle is Lifecycle.ZEROIZED
    for operation in all_operations(se):
        error = expect("se_zeroized", operation)
        assert error.details == {"reason": "tamper switch"}
    expect("se_zeroized", lambda: sealer.seal(b"p", b""))
    assert sorted(p.name for p in path.iterdir()) == ["ZEROIZED"]
    reopened = SoftwareSecureElement.open(path)  # permanently unusable, also after reboot
    for operation in all_operations(reopened):
        expect("se_zeroized", operation)
    expect(
        "se_zeroized",
        lambda: SoftwareSecureElement.manufacture(path, device_id=new_id(), pin=PIN),
    )
    se.zeroize("again")  # idempotent


@pytest.mark.req("L16", "L14")
def test_zeroize_overwrites_files_before_unlinking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "se"
    se, _ = manufacture(path)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    _, storage_key, _ = read_fuses(path)
    monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: None)  # keep the remains
    se.zeroize("test")
    for name, old in before.items():
        remains = (path / name).read_bytes()
        assert len(remains) == len(old)
        assert remains != old
        assert storage_key not in remains


@pytest.mark.req("L16", "R19")
def test_failed_operations_past_threshold_zeroize(tmp_path: Path) -> None:
    path = tmp_path / "se"
    se, record = manufacture(path, failure_threshold=4)
    se.report_failure("handshake")
    expect("se_decrypt_failed", lambda: se.decrypt(b"\x30\x03garbage"))
    assert SoftwareSecureElement.open(path).info().failures == 2  # durable: reboot won't reset
    se.clear_failures()  # after an authenticated platform session
    assert se.info().failures == 0
    # A successful decryption does not reset the counter: anyone can encrypt to the public key.
    se.report_failure("handshake")
    assert se.decrypt(record.public_key.encrypt(b"x")) == b"x"
    se.report_failure("bad-frame")
    se.report_failure("bad-frame")
    expect("se_zeroized", lambda: se.report_failure("bad-frame"))
    assert se.lifecycle is Lifecycle.ZEROIZED
    assert not (path / "state.a").exists()
    assert not (path / "state.b").exists()


@pytest.mark.req("R19")
def test_internal_faults_disclose_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    se, _ = manufacture(tmp_path / "se")

    def leaky(self: object, message: bytes, signer_id: bytes = b"") -> bytes:
        raise RuntimeError("d=0x1234abcd leaked in a message")

    monkeypatch.setattr(SM2PrivateKey, "sign", leaky)
    error = expect("se_internal_error", lambda: se.sign(b"m"))
    assert "1234abcd" not in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


# --- sealed state bound to its SE -------------------------------------------------------------


@pytest.mark.req("R19", "L13")
def test_state_moved_to_another_se_does_not_open(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    manufacture(a)
    manufacture(b)
    for slot in ("state.a", "state.b"):
        shutil.copy(a / slot, b / slot)
    expect("se_state_corrupt", lambda: SoftwareSecureElement.open(b))


@pytest.mark.req("R19", "L13")
def test_se_id_is_bound_into_the_sealed_state(tmp_path: Path) -> None:
    """Even with the right storage key, the state only opens under the SE id it was sealed for."""
    path = tmp_path / "se"
    manufacture(path)
    se_id, key, personalised = read_fuses(path)
    other_id = bytes([se_id[0] ^ 1]) + se_id[1:]
    body = struct.pack(">4sBB16s16s", b"ASEF", 1, personalised, other_id, key)
    (path / "fuses.bin").write_bytes(body + sm3(body)[:8])
    expect("se_state_corrupt", lambda: SoftwareSecureElement.open(path))


@pytest.mark.req("R19", "L13")
def test_wrong_storage_key_or_tampered_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "se"
    _, record = manufacture(path)
    pristine = {p.name: p.read_bytes() for p in path.iterdir()}

    def restore() -> None:
        for name, data in pristine.items():
            (path / name).write_bytes(data)

    se_id, _key, personalised = read_fuses(path)
    wrong = bytes(16)
    body = struct.pack(">4sBB16s16s", b"ASEF", 1, personalised, se_id, wrong)
    (path / "fuses.bin").write_bytes(body + sm3(body)[:8])
    expect("se_state_corrupt", lambda: SoftwareSecureElement.open(path))
    restore()

    fuses = bytearray(pristine["fuses.bin"])
    fuses[30] ^= 0x01
    (path / "fuses.bin").write_bytes(bytes(fuses))
    expect("se_fuses_corrupt", lambda: SoftwareSecureElement.open(path))
    restore()

    # One damaged slot: the other (same content, written twice) takes over.
    damaged = bytearray(pristine["state.a"])
    damaged[40] ^= 0x80
    (path / "state.a").write_bytes(bytes(damaged))
    assert SoftwareSecureElement.open(path).public_key == record.public_key
    # Both damaged: refuse, clearly.
    (path / "state.b").write_bytes(pristine["state.b"][:-5])
    expect("se_state_corrupt", lambda: SoftwareSecureElement.open(path))
    restore()
    for name in ("state.a", "state.b"):
        (path / name).unlink()
    expect("se_state_missing", lambda: SoftwareSecureElement.open(path))


@pytest.mark.req("R19")
def test_blank_and_missing_se(tmp_path: Path) -> None:
    expect("se_not_manufactured", lambda: SoftwareSecureElement.open(tmp_path / "none"))
    blank = SoftwareSecureElement.create_blank(tmp_path / "blank")
    assert blank.lifecycle is Lifecycle.BLANK
    expect("se_not_manufactured", lambda: SoftwareSecureElement.open(tmp_path / "blank"))
    # Stale state of a personalisation that crashed before the fuse was blown is discarded.
    (tmp_path / "blank" / "state.a").write_bytes(b"ASR1" + os.urandom(60))
    # The chip vendor's SE id survives personalisation.
    _se, record = manufacture(tmp_path / "blank")
    assert record.se_id == blank.se_id
    assert SoftwareSecureElement.open(tmp_path / "blank").public_key == record.public_key
    expect("se_bad_input", lambda: manufacture(tmp_path / "c", device_id="XYZ"))
    expect(
        "se_bad_input",
        lambda: SoftwareSecureElement.manufacture(tmp_path / "d", device_id=new_id(), pin=b"1"),
    )
    assert (tmp_path / "blank" / "fuses.bin").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "blank").stat().st_mode & 0o777 == 0o700


# --- device storage sealed by the SE ----------------------------------------------------------


@pytest.mark.req("L13", "L17", "L16")
def test_event_buffer_sealed_by_se_is_unreadable_after_zeroize(tmp_path: Path) -> None:
    se, _ = manufacture(tmp_path / "se")
    events = EventBuffer(tmp_path / "events", se.storage_sealer("events"), capacity=10)
    events.append(b'{"kind":"unlock","user":"u-1"}')
    assert b"unlock" not in (tmp_path / "events" / "events.log").read_bytes()
    reopened = EventBuffer(tmp_path / "events", se.storage_sealer("events"), capacity=10)
    assert [e.record for e in reopened.pending()] == [b'{"kind":"unlock","user":"u-1"}']
    # Another label's key does not open it.
    other = se.storage_sealer("other")
    with pytest.raises(IntegrityError):
        other.open(other.seal(b"x", b"a"), b"b")
    se.zeroize("test")
    with pytest.raises(SecureElementError):
        EventBuffer(tmp_path / "events", se.storage_sealer("events"), capacity=10)


# --- the protocol's view of the SE ------------------------------------------------------------


@pytest.mark.req("L16", "R18", "L14")
def test_full_handshake_with_the_se_and_the_platforms_root_key_copy(tmp_path: Path) -> None:
    from anju.protocol.certificates import CertKind, issue_certificate
    from anju.protocol.handshake import DeviceHandshake, DeviceKeyStore, GatewayHandshake

    se, record = manufacture(tmp_path / "se")
    keystore: DeviceKeyStore = se  # structural: the SE is the device's key store
    ca = SM2PrivateKey.generate()
    gateway_key = SM2PrivateKey.generate()
    now_ms = 1_750_000_000_000

    def clock() -> int:
        return now_ms

    device_cert = issue_certificate(
        ca,
        kind=CertKind.DEVICE,
        subject=record.device_id,
        se_id=record.se_id,
        product="lock-x1",
        public_key=record.public_key,
        not_before=now_ms // 1000 - 60,
        not_after=now_ms // 1000 + 3600,
    )
    gateway_cert = issue_certificate(
        ca,
        kind=CertKind.GATEWAY,
        subject="gw-1",
        se_id="",
        product="gateway",
        public_key=gateway_key.public_key,
        not_before=now_ms // 1000 - 60,
        not_after=now_ms // 1000 + 3600,
    )
    device = DeviceHandshake(record.device_id, device_cert, keystore, ca.public_key, now_ms=clock)
    platform = GatewayHandshake(
        gateway_cert, gateway_key, ca.public_key, lambda cert: record.root_key, now_ms=clock
    )
    pending, welcome = platform.respond(device.hello(), device_id=record.device_id)
    device_channel, confirm = device.on_welcome(welcome)
    # CONFIRM authenticated under keys the platform derived from its copy of the root key:
    # the SE decrypted Kp and holds that root key.
    platform_channel = pending.on_confirm(confirm)
    assert platform_channel.session_id == device_channel.session_id
    assert platform_channel.device_id == record.device_id


@pytest.mark.req("R19", "L16")
def test_device_package_never_imports_the_platform() -> None:
    """Device software stays apart from the platform: only anju.device, anju.protocol,
    anju.kit and anju.errors get loaded."""
    code = (
        "import sys, anju.device, anju.device.secure_element, anju.device.storage\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('anju')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    allowed = ("anju.device", "anju.protocol", "anju.kit", "anju.errors")
    assert "anju.device.storage" in loaded
    assert [m for m in loaded if m != "anju" and not m.startswith(allowed)] == []
