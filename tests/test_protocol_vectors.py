"""The worked example of docs/protocol.md: our code reproduces every deterministic value, and
accepts the published (randomised) signatures and Kp ciphertext."""

from __future__ import annotations

from pathlib import Path

import pytest

from anju.kit.crypto import SM2PrivateKey, sm2_z, sm3, sm4_gcm_encrypt
from anju.kit.crypto.sm2 import GX, GY, signature_to_rs
from anju.protocol import firmware, frames, keys
from anju.protocol.certificates import Certificate, CertKind, issue_certificate
from anju.protocol.channel import Direction, SecureChannel
from anju.protocol.handshake import DeviceHandshake, GatewayHandshake, ReplayCache
from anju.protocol.reference import SoftwareKeyStore
from anju.protocol.reset import check_reset
from tests.vectors import ec
from tests.vectors import protocol as v

CA = SM2PrivateKey(v.CA_PRIVATE)
GATEWAY = SM2PrivateKey(v.GATEWAY_PRIVATE)
DEVICE = SM2PrivateKey(v.DEVICE_PRIVATE)


def _cert(tbs: bytes, signature: bytes) -> bytes:
    return tbs + len(signature).to_bytes(2, "big") + signature


DEVICE_CERT = _cert(v.DEVICE_CERT_TBS, v.DEVICE_CERT_SIGNATURE)
GATEWAY_CERT = _cert(v.GATEWAY_CERT_TBS, v.GATEWAY_CERT_SIGNATURE)
HELLO = v.HELLO_PREFIX + v.HELLO_SIGNATURE
WELCOME = v.WELCOME_PREFIX + v.WELCOME_SIGNATURE


def _independent_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Textbook SM2 verification (tests.vectors.ec), independent of the product code."""
    r, s = signature_to_rs(signature)
    return ec.verify(sm3(sm2_z(public) + message), r, s, public)


@pytest.mark.req("L14", "L16")
def test_fixed_keys_match_an_independent_implementation() -> None:
    for private in (CA, GATEWAY, DEVICE):
        d = int.from_bytes(private.private_bytes(), "big")
        assert ec.to_bytes(ec.mul(d, (GX, GY))) == private.public_key.raw


@pytest.mark.req("L16", "R15")
def test_certificates_reproduce() -> None:
    common = {"not_before": v.NOT_BEFORE, "not_after": v.NOT_AFTER}
    device = issue_certificate(
        CA,
        kind=CertKind.DEVICE,
        subject=v.DEVICE_ID,
        se_id=v.SE_ID,
        product=v.PRODUCT,
        public_key=DEVICE.public_key,
        serial=v.DEVICE_SERIAL,
        **common,
    )
    gateway = issue_certificate(
        CA,
        kind=CertKind.GATEWAY,
        subject=v.GATEWAY_NAME,
        se_id="",
        product=v.GATEWAY_PRODUCT,
        public_key=GATEWAY.public_key,
        serial=v.GATEWAY_SERIAL,
        **common,
    )
    assert device.tbs() == v.DEVICE_CERT_TBS
    assert gateway.tbs() == v.GATEWAY_CERT_TBS
    now = v.TD_MS // 1000
    Certificate.decode(DEVICE_CERT).verify_as(CertKind.DEVICE, CA.public_key, now=now)
    Certificate.decode(GATEWAY_CERT).verify_as(CertKind.GATEWAY, CA.public_key, now=now)
    for tbs, sig in (
        (v.DEVICE_CERT_TBS, v.DEVICE_CERT_SIGNATURE),
        (v.GATEWAY_CERT_TBS, v.GATEWAY_CERT_SIGNATURE),
    ):
        assert _independent_verify(CA.public_key.raw, tbs, sig)


@pytest.mark.req("L16", "R18")
def test_handshake_bytes_reproduce() -> None:
    assert frames.hello_prefix(DEVICE_CERT, v.TD_MS, v.ND) == v.HELLO_PREFIX
    assert frames.hello_signed_message(v.HELLO_PREFIX) == v.HELLO_SIGNED_MESSAGE
    assert b"anju/hello/v1" + sm3(v.HELLO_PREFIX) == v.HELLO_SIGNED_MESSAGE
    assert _independent_verify(DEVICE.public_key.raw, v.HELLO_SIGNED_MESSAGE, v.HELLO_SIGNATURE)
    assert DEVICE.decrypt(v.KP_CIPHERTEXT) == v.KP
    prefix = frames.welcome_prefix(v.SESSION_ID, GATEWAY_CERT, v.TP_MS, v.NP, v.KP_CIPHERTEXT)
    assert prefix == v.WELCOME_PREFIX
    assert frames.welcome_signed_message(HELLO, prefix) == v.WELCOME_SIGNED_MESSAGE
    assert b"anju/welcome/v1" + sm3(HELLO + v.WELCOME_PREFIX) == v.WELCOME_SIGNED_MESSAGE
    assert _independent_verify(
        GATEWAY.public_key.raw, v.WELCOME_SIGNED_MESSAGE, v.WELCOME_SIGNATURE
    )
    assert frames.transcript_hash(HELLO, WELCOME) == v.TRANSCRIPT_HASH == sm3(HELLO + WELCOME)


@pytest.mark.req("L14", "R18")
def test_session_keys_reproduce() -> None:
    assert keys.session_salt(v.ND, v.NP) == v.SESSION_SALT == v.ND + v.NP
    info = keys.session_info(v.DEVICE_ID, v.SESSION_ID, v.TD_MS, v.TP_MS)
    assert info == v.SESSION_INFO
    assert info == (
        b"anju/session/v1"
        + bytes.fromhex(v.DEVICE_ID)
        + v.SESSION_ID
        + v.TD_MS.to_bytes(8, "big")
        + v.TP_MS.to_bytes(8, "big")
    )
    k_up, k_down = keys.derive_session_keys(v.ROOT_KEY, v.KP, v.SESSION_SALT, v.SESSION_INFO)
    assert (k_up, k_down) == (v.K_UP, v.K_DOWN)


@pytest.mark.req("L16", "L13")
def test_data_frames_reproduce_and_open() -> None:
    now = {"ms": v.CONFIRM_TIME_MS}
    device = SecureChannel(
        v.DEVICE_ID, v.SESSION_ID, v.K_UP, v.K_DOWN, Direction.UP, lambda: now["ms"]
    )
    platform = SecureChannel(
        v.DEVICE_ID, v.SESSION_ID, v.K_DOWN, v.K_UP, Direction.DOWN, lambda: now["ms"]
    )
    assert device.seal({"t": "confirm", "th": v.TRANSCRIPT_HASH.hex()}) == v.CONFIRM_FRAME
    now["ms"] = v.EVT_TIME_MS
    assert device.seal(v.EVT_MESSAGE) == v.EVT_FRAME
    now["ms"] = v.CMD_TIME_MS
    assert platform.seal(v.CMD_MESSAGE) == v.CMD_FRAME
    assert platform.open(v.CONFIRM_FRAME)["th"] == v.TRANSCRIPT_HASH.hex()
    assert platform.open(v.EVT_FRAME) == v.EVT_MESSAGE
    assert device.open(v.CMD_FRAME) == v.CMD_MESSAGE
    # The layout, by hand: header ‖ SM4-GCM(k, nonce, plaintext, header ‖ device id).
    header = v.CMD_FRAME[:26]
    assert header == b"\x01\x10" + v.SESSION_ID + (1).to_bytes(8, "big") + v.CMD_TIME_MS.to_bytes(
        8, "big"
    )
    nonce = b"\x02\x00\x00\x00" + (1).to_bytes(8, "big")
    plaintext = (
        b'{"args":{"until":1767614400250},"exp":1767528060250,"id":"c-0001",'
        b'"name":"lock.freeze","t":"cmd"}'
    )
    sealed = sm4_gcm_encrypt(v.K_DOWN, nonce, plaintext, header + bytes.fromhex(v.DEVICE_ID))
    assert header + sealed == v.CMD_FRAME


@pytest.mark.req("L14", "L16")
def test_evt_ack_and_reset_reproduce() -> None:
    now = {"ms": v.CMD_TIME_MS}
    platform = SecureChannel(
        v.DEVICE_ID, v.SESSION_ID, v.K_DOWN, v.K_UP, Direction.DOWN, lambda: now["ms"]
    )
    assert platform.seal(v.CMD_MESSAGE) == v.CMD_FRAME
    now["ms"] = v.EVT_ACK_TIME_MS
    assert platform.seal(v.EVT_ACK_MESSAGE) == v.EVT_ACK_FRAME
    device = SecureChannel(
        v.DEVICE_ID, v.SESSION_ID, v.K_UP, v.K_DOWN, Direction.UP, lambda: now["ms"]
    )
    assert device.open(v.CMD_FRAME) == v.CMD_MESSAGE
    assert device.open(v.EVT_ACK_FRAME) == v.EVT_ACK_MESSAGE
    # RESET: the prefix and signed message are exact; the published signature verifies,
    # independently of the product code, under the gateway key.
    assert frames.reset_prefix(v.SESSION_ID, v.RESET_TIME_MS) == v.RESET_PREFIX
    assert frames.reset_signed_message(v.DEVICE_ID, v.RESET_PREFIX) == v.RESET_SIGNED_MESSAGE
    assert b"anju/reset/v1" + sm3(v.DEVICE_ID.encode() + v.RESET_PREFIX) == v.RESET_SIGNED_MESSAGE
    assert _independent_verify(GATEWAY.public_key.raw, v.RESET_SIGNED_MESSAGE, v.RESET_SIGNATURE)
    named = check_reset(
        v.RESET_PREFIX + v.RESET_SIGNATURE,
        device_id=v.DEVICE_ID,
        sessions=[(v.SESSION_ID, GATEWAY.public_key)],
        now_ms=v.RESET_TIME_MS,
        window_ms=300_000,
    )
    assert named == v.SESSION_ID


@pytest.mark.req("L16", "R11", "R19")
def test_firmware_package_reproduces() -> None:
    signer = SM2PrivateKey(v.FIRMWARE_PRIVATE)
    cert = issue_certificate(
        CA,
        kind=CertKind.FIRMWARE,
        subject=v.FIRMWARE_SIGNER_NAME,
        se_id="",
        product=v.FIRMWARE_PRODUCT,
        public_key=signer.public_key,
        not_before=v.NOT_BEFORE,
        not_after=v.NOT_AFTER,
        serial=v.FIRMWARE_SERIAL,
    )
    assert cert.tbs() == v.FIRMWARE_CERT_TBS
    assert _independent_verify(CA.public_key.raw, v.FIRMWARE_CERT_TBS, v.FIRMWARE_CERT_SIGNATURE)
    manifest = firmware.Manifest(
        product=v.PRODUCT,
        version=v.FW_VERSION,
        size=len(v.FW_IMAGE),
        sm3=sm3(v.FW_IMAGE),
        created_ms=v.FW_CREATED_MS,
        min_from=v.FW_MIN_FROM,
    )
    assert sm3(v.FW_IMAGE) == v.FW_IMAGE_SM3
    assert manifest.encode() == v.FW_MANIFEST
    assert _independent_verify(
        signer.public_key.raw, b"anju/firmware/v1" + v.FW_MANIFEST, v.FW_SIGNATURE
    )
    certificate = _cert(v.FIRMWARE_CERT_TBS, v.FIRMWARE_CERT_SIGNATURE)
    signed = firmware.SignedManifest.parse(v.FW_MANIFEST, certificate, v.FW_SIGNATURE)
    assert firmware.Package(signed, v.FW_IMAGE).encode() == v.FW_PACKAGE
    package = firmware.Package.decode(v.FW_PACKAGE)
    assert package.verify(CA.public_key, now=v.TD_MS // 1000) == manifest
    assert package.image == v.FW_IMAGE
    # The first chunk of its download, in the worked example's session.
    now = {"ms": v.CONFIRM_TIME_MS}
    device = SecureChannel(
        v.DEVICE_ID, v.SESSION_ID, v.K_UP, v.K_DOWN, Direction.UP, lambda: now["ms"]
    )
    platform = SecureChannel(
        v.DEVICE_ID, v.SESSION_ID, v.K_DOWN, v.K_UP, Direction.DOWN, lambda: now["ms"]
    )
    for channel, frame in ((platform, v.CONFIRM_FRAME), (platform, v.EVT_FRAME)):
        channel.open(frame)
    for channel, frame in ((device, v.CMD_FRAME), (device, v.EVT_ACK_FRAME)):
        channel.open(frame)
    device.seal({"t": "confirm", "th": v.TRANSCRIPT_HASH.hex()})
    device.seal(v.EVT_MESSAGE)
    platform.seal(v.CMD_MESSAGE)
    platform.seal(v.EVT_ACK_MESSAGE)
    now["ms"] = v.FW_GET_TIME_MS
    assert device.seal(v.FW_GET_MESSAGE) == v.FW_GET_FRAME
    now["ms"] = v.FW_CHUNK_TIME_MS
    assert platform.seal(v.FW_CHUNK_MESSAGE) == v.FW_CHUNK_FRAME
    assert platform.open(v.FW_GET_FRAME) == v.FW_GET_MESSAGE
    assert device.open(v.FW_CHUNK_FRAME) == v.FW_CHUNK_MESSAGE
    assert firmware.b64decode(v.FW_CHUNK_MESSAGE["data"], max_bytes=8192) == v.FW_IMAGE


class _FixedSignatureKeyStore(SoftwareKeyStore):
    """Signs with the published HELLO signature (SM2 signatures are randomised)."""

    def sign(self, message: bytes) -> bytes:
        assert message == v.HELLO_SIGNED_MESSAGE
        return v.HELLO_SIGNATURE


@pytest.mark.req("L16", "L14", "R18")
def test_state_machines_reproduce_the_worked_example() -> None:
    # Device side: HELLO and CONFIRM exactly as published.
    nonces = iter([v.ND])
    now = {"ms": v.TD_MS}
    device = DeviceHandshake(
        v.DEVICE_ID,
        Certificate.decode(DEVICE_CERT),
        _FixedSignatureKeyStore(DEVICE, v.ROOT_KEY),
        CA.public_key,
        now_ms=lambda: now["ms"],
        random_bytes=lambda n: next(nonces),
    )
    assert device.hello() == HELLO
    now["ms"] = v.CONFIRM_TIME_MS
    channel, confirm = device.on_welcome(WELCOME)
    assert confirm == v.CONFIRM_FRAME
    assert channel.session_id == v.SESSION_ID
    # Platform side: the published HELLO is accepted at Td.
    now["ms"] = v.TD_MS
    gateway = GatewayHandshake(
        Certificate.decode(GATEWAY_CERT),
        GATEWAY,
        CA.public_key,
        now_ms=lambda: now["ms"],
        replay_cache=ReplayCache(),
    )
    verified = gateway.check_hello(HELLO, device_id=v.DEVICE_ID)
    assert verified.hello.nd == v.ND


@pytest.mark.req("L16")
def test_docs_print_the_same_values() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")
    flat = "".join(doc.split())
    for name in (
        "DEVICE_CERT_TBS",
        "GATEWAY_CERT_TBS",
        "HELLO_PREFIX",
        "TRANSCRIPT_HASH",
        "K_UP",
        "K_DOWN",
        "CONFIRM_FRAME",
        "CMD_FRAME",
        "EVT_ACK_FRAME",
        "RESET_PREFIX",
        "RESET_SIGNED_MESSAGE",
        "RESET_SIGNATURE",
        "FIRMWARE_CERT_TBS",
        "FW_MANIFEST",
        "FW_PACKAGE",
        "FW_GET_FRAME",
        "FW_CHUNK_FRAME",
    ):
        assert getattr(v, name).hex() in flat, name
