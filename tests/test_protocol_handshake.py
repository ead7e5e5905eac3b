"""Mutual authentication and session set-up between the two pure state machines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from anju.errors import NotFound
from anju.kit.crypto import SM2PrivateKey, random_bytes
from anju.protocol import frames
from anju.protocol.certificates import Certificate, CertKind, issue_certificate
from anju.protocol.channel import Direction, SecureChannel, SessionTable
from anju.protocol.errors import ProtocolError
from anju.protocol.handshake import (
    ChannelOptions,
    DeviceHandshake,
    GatewayHandshake,
    ReplayCache,
)
from anju.protocol.keys import derive_root_key, derive_session_keys, session_info, session_salt
from anju.protocol.reference import SoftwareKeyStore
from tests.vectors import protocol as v

CA = SM2PrivateKey(v.CA_PRIVATE)
OTHER_CA = SM2PrivateKey(v.OTHER_CA_PRIVATE)
GATEWAY_KEY = SM2PrivateKey(v.GATEWAY_PRIVATE)
DEVICE_KEY = SM2PrivateKey(v.DEVICE_PRIVATE)
START_MS = v.TD_MS


class Clock:
    def __init__(self, ms: int = START_MS) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def device_certificate(
    issuer: SM2PrivateKey = CA, *, key: SM2PrivateKey = DEVICE_KEY, **kw: int
) -> Certificate:
    return issue_certificate(
        issuer,
        kind=CertKind.DEVICE,
        subject=v.DEVICE_ID,
        se_id=v.SE_ID,
        product=v.PRODUCT,
        public_key=key.public_key,
        not_before=kw.get("not_before", v.NOT_BEFORE),
        not_after=kw.get("not_after", v.NOT_AFTER),
    )


def gateway_certificate(issuer: SM2PrivateKey = CA) -> Certificate:
    return issue_certificate(
        issuer,
        kind=CertKind.GATEWAY,
        subject=v.GATEWAY_NAME,
        se_id="",
        product=v.GATEWAY_PRODUCT,
        public_key=GATEWAY_KEY.public_key,
        not_before=v.NOT_BEFORE,
        not_after=v.NOT_AFTER,
    )


@dataclass
class World:
    """A device and a gateway with independent clocks, sharing the CA."""

    device_clock: Clock = field(default_factory=Clock)
    gateway_clock: Clock = field(default_factory=Clock)
    root_key: bytes = v.ROOT_KEY
    device_root_key: bytes = v.ROOT_KEY
    device_cert: Certificate = field(default_factory=device_certificate)
    gateway_cert: Certificate = field(default_factory=gateway_certificate)
    replay_cache: ReplayCache = field(default_factory=ReplayCache)
    options: ChannelOptions = field(default_factory=ChannelOptions)
    lookups: list[str] = field(default_factory=list)

    def device(self, **kw: object) -> DeviceHandshake:
        return DeviceHandshake(
            v.DEVICE_ID,
            self.device_cert,
            SoftwareKeyStore(DEVICE_KEY, self.device_root_key),
            CA.public_key,
            now_ms=self.device_clock,
            options=self.options,
            **kw,  # type: ignore[arg-type]
        )

    def lookup(self, cert: Certificate) -> bytes:
        self.lookups.append(cert.subject)
        return self.root_key

    def gateway(self, lookup: Callable[[Certificate], object] | None = None) -> GatewayHandshake:
        return GatewayHandshake(
            self.gateway_cert,
            GATEWAY_KEY,
            CA.public_key,
            lookup or self.lookup,  # type: ignore[arg-type]
            now_ms=self.gateway_clock,
            replay_cache=self.replay_cache,
            options=self.options,
        )

    def connect(self) -> tuple[SecureChannel, SecureChannel]:
        """A full handshake; (device channel, platform channel)."""
        device = self.device()
        pending, welcome = self.gateway().respond(device.hello(), device_id=v.DEVICE_ID)
        device_channel, confirm = device.on_welcome(welcome)
        return device_channel, pending.on_confirm(confirm)


def code(fn: Callable[[], object]) -> str:
    with pytest.raises(ProtocolError) as exc:
        fn()
    return exc.value.code


@pytest.mark.req("L16", "L14", "R18", "R15")
def test_full_handshake_then_data_both_ways() -> None:
    world = World()
    device, platform = world.connect()
    assert device.session_id == platform.session_id
    assert world.lookups == [v.DEVICE_ID]
    world.device_clock.ms += 1000
    world.gateway_clock.ms += 1000
    evt = {"t": "evt", "id": "e1", "at": world.device_clock.ms, "kind": "door.open", "data": {}}
    assert platform.open(device.seal(evt), device_id=v.DEVICE_ID) == evt
    cmd = {"t": "cmd", "id": "c1", "name": "lock.open", "args": {"s": 5}, "exp": START_MS + 9999}
    assert device.open(platform.seal(cmd)) == cmd
    ack = {"t": "ack", "id": "c1", "ok": True, "code": None}
    assert platform.open(device.seal(ack)) == ack
    assert platform.counters.accepted == 3  # CONFIRM, evt, ack
    assert device.counters.accepted == 1


@pytest.mark.req("L16", "L14")
async def test_async_root_key_lookup() -> None:
    world = World()

    async def lookup(cert: Certificate) -> bytes:
        return world.root_key

    device = world.device()
    pending, welcome = await world.gateway(lookup).respond_async(device.hello())
    _, confirm = device.on_welcome(welcome)
    assert pending.on_confirm(confirm).device_id == v.DEVICE_ID
    with pytest.raises(TypeError):
        world.gateway(lookup).respond(world.device().hello())


@pytest.mark.req("L16", "L14")
def test_unknown_or_revoked_device_is_rejected() -> None:
    world = World()

    def unknown(cert: Certificate) -> bytes:
        raise NotFound("no such device")

    def revoked(cert: Certificate) -> bytes:
        raise ProtocolError("device_rejected", "revoked")

    assert code(lambda: world.gateway(unknown).respond(world.device().hello())) == (
        "device_rejected"
    )
    assert code(lambda: world.gateway(revoked).respond(world.device().hello())) == (
        "device_rejected"
    )


@pytest.mark.req("L16", "R18")
def test_replayed_hello_is_refused() -> None:
    world = World()
    hello = world.device().hello()
    world.gateway().respond(hello)
    assert code(lambda: world.gateway().respond(hello)) == "replay"
    # The same nonce from another gateway instance sharing the cache, a second later.
    world.gateway_clock.ms += 1000
    assert code(lambda: world.gateway().check_hello(hello)) == "replay"


@pytest.mark.req("L16", "R18")
def test_replay_cache_is_bounded_and_forgets_expired_nonces() -> None:
    cache = ReplayCache(capacity=3)
    for i in range(5):
        cache.check_and_add("d", bytes([i]) * 16, expires_ms=10_000, now_ms=0)
    assert len(cache) == 3
    cache.check_and_add("d", b"\x04" * 16, expires_ms=10_000, now_ms=10_000)  # expired: forgot
    assert len(cache) == 1


@pytest.mark.req("L16", "R18")
@pytest.mark.parametrize(("skew_ms", "ok"), [(300_000, True), (-300_000, True), (300_001, False)])
def test_hello_time_window(skew_ms: int, ok: bool) -> None:
    world = World()
    world.device_clock.ms += skew_ms
    if ok:
        world.gateway().check_hello(world.device().hello())
    else:
        assert code(lambda: world.gateway().check_hello(world.device().hello())) == "stale_time"
    world.device_clock.ms = START_MS - 300_001
    assert code(lambda: world.gateway().check_hello(world.device().hello())) == "stale_time"


@pytest.mark.req("L16")
def test_forged_hello_signature() -> None:
    world = World()
    hello = frames.decode_hello(world.device().hello())
    prefix = hello.raw[: -len(hello.signature)]
    forged = prefix + OTHER_CA.sign(frames.hello_signed_message(prefix))
    assert code(lambda: world.gateway().check_hello(forged)) == "bad_signature"
    # A signature by the right key over different bytes.
    other = prefix[:-1] + bytes([prefix[-1] ^ 1])
    spliced = prefix + DEVICE_KEY.sign(frames.hello_signed_message(other))
    assert code(lambda: world.gateway().check_hello(spliced)) == "bad_signature"


@pytest.mark.req("L16", "R15")
def test_device_certificate_from_another_ca() -> None:
    world = World(device_cert=device_certificate(OTHER_CA))
    assert code(lambda: world.gateway().respond(world.device().hello())) == "cert_wrong_issuer"
    assert world.lookups == []


@pytest.mark.req("L16", "R15")
def test_expired_and_not_yet_valid_device_certificate() -> None:
    t = START_MS // 1000
    world = World(device_cert=device_certificate(not_before=t - 100, not_after=t - 1))
    assert code(lambda: world.gateway().respond(world.device().hello())) == "cert_expired"
    world = World(device_cert=device_certificate(not_before=t + 1, not_after=t + 100))
    assert code(lambda: world.gateway().respond(world.device().hello())) == "cert_not_yet_valid"


@pytest.mark.req("L16", "R15")
def test_certificate_kinds_cannot_be_swapped() -> None:
    # A gateway certificate presented in a HELLO (stolen gateway cert, device key).
    world = World()
    hello = frames.decode_hello(world.device().hello())
    gw = world.gateway_cert.encode()
    prefix = frames.hello_prefix(gw, hello.td_ms, hello.nd)
    bad = prefix + GATEWAY_KEY.sign(frames.hello_signed_message(prefix))
    assert code(lambda: world.gateway().check_hello(bad)) == "cert_wrong_kind"


@pytest.mark.req("L16", "R15")
def test_device_refuses_gateway_certificate_signed_by_the_wrong_key() -> None:
    world = World(gateway_cert=gateway_certificate(OTHER_CA))
    device = world.device()
    _, welcome = world.gateway().respond(device.hello())
    assert code(lambda: device.on_welcome(welcome)) == "cert_wrong_issuer"


@pytest.mark.req("L16", "R15")
def test_device_refuses_a_device_certificate_as_gateway() -> None:
    world = World()
    device = world.device()
    hello = device.hello()
    welcome = _welcome(hello, cert=world.device_cert, signer=DEVICE_KEY)
    assert code(lambda: device.on_welcome(welcome)) == "cert_wrong_kind"


def _welcome(
    hello: bytes,
    *,
    cert: Certificate | None = None,
    signer: SM2PrivateKey = GATEWAY_KEY,
    kp_ciphertext: bytes | None = None,
    tp_ms: int = START_MS,
) -> bytes:
    """A WELCOME built by hand (for negative cases the real gateway would never produce)."""
    cert = cert or gateway_certificate()
    c = kp_ciphertext or DEVICE_KEY.public_key.encrypt(random_bytes(32))
    prefix = frames.welcome_prefix(random_bytes(8), cert.encode(), tp_ms, random_bytes(16), c)
    return prefix + signer.sign(frames.welcome_signed_message(hello, prefix))


class _ReplayingKeyStore(SoftwareKeyStore):
    def sign(self, message: bytes) -> bytes:
        return v.HELLO_SIGNATURE


@pytest.mark.req("L16")
def test_any_bit_flip_in_welcome_is_refused() -> None:
    # The published HELLO/WELCOME pair: a fresh device handshake reproduces the same HELLO.
    welcome = v.WELCOME_PREFIX + v.WELCOME_SIGNATURE
    ca_key = CA.public_key
    clock = Clock()

    def device() -> DeviceHandshake:
        d = DeviceHandshake(
            v.DEVICE_ID,
            Certificate.decode(
                v.DEVICE_CERT_TBS
                + len(v.DEVICE_CERT_SIGNATURE).to_bytes(2, "big")
                + v.DEVICE_CERT_SIGNATURE
            ),
            _ReplayingKeyStore(DEVICE_KEY, v.ROOT_KEY),
            ca_key,
            now_ms=clock,
            random_bytes=lambda n: v.ND,
        )
        clock.ms = v.TD_MS
        d.hello()
        clock.ms = v.CONFIRM_TIME_MS
        return d

    device().on_welcome(welcome)  # the untouched frame is accepted
    for i in range(len(welcome)):
        for mask in (0x01, 0x80):
            tampered = bytearray(welcome)
            tampered[i] ^= mask
            handshake = device()
            with pytest.raises(ProtocolError):
                handshake.on_welcome(bytes(tampered))
    assert code(lambda: device().on_welcome(welcome[:-1])) != ""
    assert code(lambda: device().on_welcome(welcome + b"\x00")) != ""


@pytest.mark.req("L16", "L14")
def test_wrong_kp_ciphertext() -> None:
    world = World()
    other = SM2PrivateKey.generate()
    for c in (
        other.public_key.encrypt(random_bytes(32)),  # encrypted to another key
        DEVICE_KEY.public_key.encrypt(random_bytes(16)),  # right key, wrong length
        b"\x30\x03\x02\x01\x01",  # not a ciphertext
    ):
        device = world.device()
        welcome = _welcome(device.hello(), kp_ciphertext=c)
        assert code(lambda d=device, w=welcome: d.on_welcome(w)) == "handshake_failed"  # type: ignore[misc]


@pytest.mark.req("L16")
def test_welcome_time_window_on_the_device() -> None:
    world = World()
    device = world.device()
    welcome = _welcome(device.hello(), tp_ms=START_MS + 300_001)
    assert code(lambda: device.on_welcome(welcome)) == "stale_time"


@pytest.mark.req("L16", "L14")
def test_welcome_is_accepted_once_and_hello_sent_once() -> None:
    world = World()
    device = world.device()
    hello = device.hello()
    assert code(device.hello) == "handshake_failed"
    _, welcome = world.gateway().respond(hello)
    device.on_welcome(welcome)
    assert code(lambda: device.on_welcome(welcome)) == "handshake_failed"
    assert code(lambda: world.device().on_welcome(welcome)) == "handshake_failed"  # no HELLO


@pytest.mark.req("L16", "L14", "R18")
def test_confirm_with_wrong_transcript_hash() -> None:
    world = World()
    device = world.device()
    hello = device.hello()
    pending, welcome = world.gateway().respond(hello)
    w = frames.decode_welcome(welcome)
    h = frames.decode_hello(hello)
    keys = derive_session_keys(
        v.ROOT_KEY,
        DEVICE_KEY.decrypt(w.kp_ciphertext),
        session_salt(h.nd, w.np),
        session_info(v.DEVICE_ID, w.session_id, h.td_ms, w.tp_ms),
    )
    channel = ChannelOptions().channel(
        v.DEVICE_ID, w.session_id, keys, Direction.UP, world.device_clock
    )
    confirm = channel.seal({"t": "confirm", "th": "00" * 32})
    assert code(lambda: pending.on_confirm(confirm)) == "key_confirmation_failed"
    # One authentic try only: even the right CONFIRM now fails.
    _, right = device.on_welcome(welcome)
    assert code(lambda: pending.on_confirm(right)) == "handshake_failed"


@pytest.mark.req("L16", "L14", "R18")
def test_confirm_from_a_device_with_another_root_key() -> None:
    world = World(device_root_key=bytes(16))
    device = world.device()
    pending, welcome = world.gateway().respond(device.hello())
    _, confirm = device.on_welcome(welcome)
    assert code(lambda: pending.on_confirm(confirm)) == "key_confirmation_failed"


@pytest.mark.req("L16")
def test_confirm_must_be_first_and_in_time() -> None:
    world = World()
    device = world.device()
    pending, welcome = world.gateway().respond(device.hello())
    channel, confirm = device.on_welcome(welcome)
    state = {"t": "state", "at": 1, "battery": 80, "firmware": "1.0.0", "signal": -60}
    assert code(lambda: pending.on_confirm(channel.seal(state))) == "key_confirmation_failed"
    world.gateway_clock.ms += 300_001
    assert code(lambda: pending.on_confirm(confirm)) == "handshake_failed"


@pytest.mark.req("L16")
def test_hello_on_another_devices_topic() -> None:
    world = World()
    other = "ffeeddccbbaa99887766554433221100"
    assert code(lambda: world.gateway().respond(world.device().hello(), device_id=other)) == (
        "wrong_device"
    )


@pytest.mark.req("L16", "L14", "R18")
def test_rekey_after_frame_threshold_replaces_the_session() -> None:
    world = World(options=ChannelOptions(rekey_after_frames=3))
    table = SessionTable()
    device, platform = world.connect()
    table.install(platform)
    assert not device.needs_rekey
    for i in range(2):
        table.open(v.DEVICE_ID, device.seal(_evt(i, world)))
    assert device.needs_rekey
    assert platform.needs_rekey
    in_flight = device.seal(_evt(9, world))
    # New HELLO on the same connection; the old session works until the new one is confirmed.
    new_device, new_platform = world.connect()
    assert new_device.session_id != device.session_id
    assert table.install(new_platform) is platform
    assert code(lambda: table.open(v.DEVICE_ID, in_flight)) == "wrong_session"
    assert code(lambda: platform.open(in_flight)) == "session_closed"
    assert table.open(v.DEVICE_ID, new_device.seal(_evt(10, world)))["id"] == "e10"
    assert not new_device.needs_rekey


@pytest.mark.req("L14", "R18")
def test_rekey_after_session_age() -> None:
    world = World(options=ChannelOptions(rekey_after_ms=3_600_000))
    device, _ = world.connect()
    world.device_clock.ms += 3_599_999
    assert not device.needs_rekey
    world.device_clock.ms += 1
    assert device.needs_rekey


def _evt(i: int, world: World) -> dict[str, object]:
    return {"t": "evt", "id": f"e{i}", "at": world.device_clock.ms, "kind": "k", "data": {}}


@pytest.mark.req("L14", "R18")
def test_root_key_derivation_r18d() -> None:
    fresh = bytes(range(32))
    key = derive_root_key(v.SE_ID, v.DEVICE_ID, fresh)
    assert len(key) == 16
    assert key != derive_root_key(v.SE_ID, v.DEVICE_ID, bytes(32))
    assert key != derive_root_key(v.DEVICE_ID, v.SE_ID, fresh)
    with pytest.raises(ValueError, match="32 fresh"):
        derive_root_key(v.SE_ID, v.DEVICE_ID, b"short")


@pytest.mark.req("L16")
def test_misconfigured_sides_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="key store"):
        DeviceHandshake(
            v.DEVICE_ID,
            device_certificate(),
            SoftwareKeyStore(GATEWAY_KEY, v.ROOT_KEY),
            CA.public_key,
            now_ms=Clock(),
        )
    with pytest.raises(ValueError, match="GATEWAY"):
        GatewayHandshake(device_certificate(), DEVICE_KEY, CA.public_key, now_ms=Clock())
    with pytest.raises(ValueError, match="gateway key"):
        GatewayHandshake(gateway_certificate(), DEVICE_KEY, CA.public_key, now_ms=Clock())
