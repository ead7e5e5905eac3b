"""The handshake as two pure state machines (no I/O): the device side and the platform side.

Device                                   Platform (gateway)
  HELLO   = cert_d ‖ Td ‖ Nd ‖ sig_d  -->  check cert_d, sig_d, Td window, Nd fresh;
                                           caller looks up the device's root key
          <--  WELCOME = sid ‖ cert_g ‖ Tp ‖ Np ‖ Enc(pk_d, Kp) ‖ sig_g(HELLO ‖ WELCOME)
  check cert_g, sig_g, Tp; Kp = Dec(C);
  keys = HKDF(root ‖ Kp, Nd ‖ Np, …)
  DATA seq 1 = CONFIRM {th}           -->  check th: the device holds its private key
                                           (it decrypted Kp) and its root key
Clocks (``now_ms``) and randomness (``random_bytes``) are injected. The device's secrets stay in
a :class:`DeviceKeyStore` (its secure element); the platform's root-key lookup is done by the
caller between :meth:`GatewayHandshake.check_hello` and :meth:`GatewayHandshake.welcome`, or by
:meth:`GatewayHandshake.respond` / :meth:`GatewayHandshake.respond_async` with ``lookup``.
"""

from __future__ import annotations

import enum
import hmac
import inspect
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from anju.errors import AnjuError, CryptoError
from anju.kit.crypto import SM2PublicKey
from anju.kit.crypto import random_bytes as os_random_bytes
from anju.kit.keyring import Signer
from anju.protocol.certificates import Certificate, CertKind
from anju.protocol.channel import (
    DEFAULT_REKEY_AFTER_FRAMES,
    DEFAULT_REKEY_AFTER_MS,
    DEFAULT_TIME_WINDOW_MS,
    Direction,
    SecureChannel,
)
from anju.protocol.errors import ProtocolError
from anju.protocol.frames import (
    KP_BYTES,
    NONCE_BYTES,
    SESSION_ID_BYTES,
    Hello,
    decode_data,
    decode_hello,
    decode_welcome,
    hello_prefix,
    hello_signed_message,
    transcript_hash,
    welcome_prefix,
    welcome_signed_message,
)
from anju.protocol.keys import ROOT_KEY_BYTES, derive_session_keys, session_info, session_salt
from anju.protocol.topics import check_device_id

Clock = Callable[[], int]
RandomBytes = Callable[[int], bytes]
RootKeyLookup = Callable[[Certificate], "bytes | Awaitable[bytes]"]


class DeviceKeyStore(Protocol):
    """The device's secure element as the handshake sees it: keys never leave it."""

    @property
    def public_key(self) -> SM2PublicKey: ...

    def sign(self, message: bytes) -> bytes:
        """SM2 signature (DER) over ``message`` with the device key, default signer id."""
        ...

    def decrypt(self, ciphertext: bytes) -> bytes:
        """SM2-decrypt with the device key; raise (IntegrityError) when it does not check."""
        ...

    def derive_session_keys(self, kp: bytes, salt: bytes, info: bytes) -> tuple[bytes, bytes]:
        """(k_up, k_down) = HKDF-SM3(root key ‖ kp, salt, info, 32) halves, inside the SE."""
        ...


@dataclass(frozen=True)
class ChannelOptions:
    """Limits shared by the handshake and the channels it creates."""

    time_window_ms: int = DEFAULT_TIME_WINDOW_MS
    rekey_after_frames: int = DEFAULT_REKEY_AFTER_FRAMES
    rekey_after_ms: int = DEFAULT_REKEY_AFTER_MS

    def channel(
        self,
        device_id: str,
        session_id: bytes,
        keys: tuple[bytes, bytes],
        direction: Direction,
        clock: Clock,
    ) -> SecureChannel:
        """A channel for this side; ``keys`` is (k_up, k_down)."""
        k_up, k_down = keys
        send, receive = (k_up, k_down) if direction == Direction.UP else (k_down, k_up)
        return SecureChannel(
            device_id,
            session_id,
            send,
            receive,
            direction,
            clock,
            time_window_ms=self.time_window_ms,
            rekey_after_frames=self.rekey_after_frames,
            rekey_after_ms=self.rekey_after_ms,
        )


def _fail(message: str) -> ProtocolError:
    return ProtocolError("handshake_failed", message)


def _check_time(label: str, peer_ms: int, now_ms: int, window_ms: int) -> None:
    if abs(peer_ms - now_ms) > window_ms:
        raise ProtocolError("stale_time", f"{label} outside ±{window_ms // 1000} s of our clock")


class _State(enum.Enum):
    READY = "ready"
    WAITING = "waiting"
    DONE = "done"
    FAILED = "failed"


# --- device side ------------------------------------------------------------------------------


class DeviceHandshake:
    """One handshake attempt of a device: :meth:`hello`, then :meth:`on_welcome`."""

    def __init__(
        self,
        device_id: str,
        certificate: Certificate,
        keystore: DeviceKeyStore,
        gateway_ca_public_key: SM2PublicKey,
        *,
        now_ms: Clock,
        random_bytes: RandomBytes = os_random_bytes,
        options: ChannelOptions | None = None,
    ) -> None:
        self.device_id = check_device_id(device_id)
        if certificate.kind != CertKind.DEVICE or certificate.subject != device_id:
            raise ValueError("the certificate is not this device's")
        if certificate.public_key != keystore.public_key:
            raise ValueError("the certificate does not match the key store's key")
        self._cert = certificate
        self._keystore = keystore
        self._ca = gateway_ca_public_key
        self._now = now_ms
        self._random = random_bytes
        self._options = options or ChannelOptions()
        self._state = _State.READY
        self._hello = b""
        self._td = 0
        self._nd = b""
        #: The gateway key authenticated by the WELCOME (it also signs that session's RESET).
        self.gateway_public_key: SM2PublicKey | None = None

    def hello(self) -> bytes:
        """The HELLO frame (once per handshake)."""
        if self._state is not _State.READY:
            raise _fail("HELLO already sent; start a new handshake")
        self._td = self._now()
        self._nd = self._random(NONCE_BYTES)
        if len(self._nd) != NONCE_BYTES:
            raise ValueError("random_bytes returned the wrong length")
        prefix = hello_prefix(self._cert.encode(), self._td, self._nd)
        self._hello = prefix + self._keystore.sign(hello_signed_message(prefix))
        self._state = _State.WAITING
        return self._hello

    def on_welcome(self, frame: bytes) -> tuple[SecureChannel, bytes]:
        """Check the WELCOME; the session channel and the CONFIRM frame to send."""
        if self._state is not _State.WAITING:
            raise _fail("not waiting for a WELCOME")
        self._state = _State.FAILED  # until proven otherwise: one WELCOME per HELLO
        welcome = decode_welcome(frame)
        now = self._now()
        welcome.certificate.verify_as(CertKind.GATEWAY, self._ca, now=now // 1000)
        if not welcome.certificate.public_key.verify(
            welcome.signed_message(self._hello), welcome.signature
        ):
            raise ProtocolError("bad_signature", "WELCOME signature does not verify")
        _check_time("Tp", welcome.tp_ms, now, self._options.time_window_ms)
        try:
            kp = self._keystore.decrypt(welcome.kp_ciphertext)
        except CryptoError:
            raise _fail("Kp did not decrypt with the device key") from None
        if len(kp) != KP_BYTES:
            raise _fail("Kp has the wrong length")
        keys = self._keystore.derive_session_keys(
            kp,
            session_salt(self._nd, welcome.np),
            session_info(self.device_id, welcome.session_id, self._td, welcome.tp_ms),
        )
        channel = self._options.channel(
            self.device_id, welcome.session_id, keys, Direction.UP, self._now
        )
        th = transcript_hash(self._hello, frame)
        confirm = channel.seal({"t": "confirm", "th": th.hex()})
        self.gateway_public_key = welcome.certificate.public_key
        self._state = _State.DONE
        return channel, confirm


# --- platform side ----------------------------------------------------------------------------


class ReplayCache:
    """Recently seen (device id, Nd) pairs, kept as long as their Td could still be accepted.

    Bounded: past ``capacity`` the oldest entries go first. Per process; a HELLO replayed to
    another process still yields no session, since CONFIRM needs the device's keys.
    """

    def __init__(self, *, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, bytes], int] = OrderedDict()

    def check_and_add(self, device_id: str, nd: bytes, *, expires_ms: int, now_ms: int) -> None:
        """Raise ProtocolError("replay") if seen; otherwise remember it until ``expires_ms``."""
        entries = self._entries
        while entries:
            oldest_key, oldest_expiry = next(iter(entries.items()))
            if oldest_expiry > now_ms:
                break
            del entries[oldest_key]
        key = (device_id, nd)
        if key in entries:
            raise ProtocolError("replay", "HELLO nonce seen before")
        entries[key] = expires_ms
        if len(entries) > self._capacity:
            entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class VerifiedHello:
    """A HELLO whose certificate, signature, time and nonce have been checked."""

    hello: Hello

    @property
    def certificate(self) -> Certificate:
        return self.hello.certificate

    @property
    def device_id(self) -> str:
        return self.hello.certificate.subject


class PendingSession:
    """The platform side after WELCOME, waiting for the device's CONFIRM."""

    def __init__(
        self,
        channel: SecureChannel,
        transcript: bytes,
        expires_ms: int,
        now_ms: Clock,
    ) -> None:
        self._channel = channel
        self._transcript = transcript
        self._expires = expires_ms
        self._now = now_ms
        self._state = _State.WAITING

    @property
    def device_id(self) -> str:
        return self._channel.device_id

    @property
    def session_id(self) -> bytes:
        return self._channel.session_id

    def on_confirm(self, frame: bytes) -> SecureChannel:
        """Check the CONFIRM (first up DATA); the established channel on success."""
        if self._state is not _State.WAITING:
            raise _fail("this handshake is over")
        if self._now() > self._expires:
            self._state = _State.FAILED
            raise _fail("CONFIRM came too late")
        if decode_data(frame).seq != 1:
            raise ProtocolError("key_confirmation_failed", "CONFIRM must be the first frame")
        try:
            message = self._channel.open(frame)
        except ProtocolError as exc:
            if exc.code != "bad_tag":
                raise
            raise ProtocolError(
                "key_confirmation_failed", "CONFIRM did not authenticate (device keys differ)"
            ) from None
        self._state = _State.FAILED  # an authentic frame: this is the one and only try
        th = message.get("th")
        if message.get("t") != "confirm" or not isinstance(th, str):
            raise ProtocolError("key_confirmation_failed", "the first frame must be CONFIRM")
        if not hmac.compare_digest(th, self._transcript.hex()):
            raise ProtocolError("key_confirmation_failed", "transcript hash does not match")
        self._state = _State.DONE
        return self._channel


class GatewayHandshake:
    """The platform side of handshakes (one instance serves every device)."""

    def __init__(
        self,
        gateway_certificate: Certificate,
        gateway_signer: Signer,
        device_ca_public_key: SM2PublicKey,
        lookup: RootKeyLookup | None = None,
        *,
        now_ms: Clock,
        random_bytes: RandomBytes = os_random_bytes,
        replay_cache: ReplayCache | None = None,
        options: ChannelOptions | None = None,
    ) -> None:
        if gateway_certificate.kind != CertKind.GATEWAY:
            raise ValueError("the gateway needs a GATEWAY certificate")
        if gateway_certificate.public_key != gateway_signer.public_key:
            raise ValueError("the gateway certificate does not match the gateway key")
        self._cert = gateway_certificate
        self._cert_bytes = gateway_certificate.encode()
        self._signer = gateway_signer
        self._ca = device_ca_public_key
        self._lookup = lookup
        self._now = now_ms
        self._random = random_bytes
        self._replays = replay_cache if replay_cache is not None else ReplayCache()
        self._options = options or ChannelOptions()

    def check_hello(self, frame: bytes, *, device_id: str | None = None) -> VerifiedHello:
        """Verify a HELLO (``device_id``: from the topic it arrived on, must match the cert)."""
        hello = decode_hello(frame)
        now = self._now()
        cert = hello.certificate
        cert.verify_as(CertKind.DEVICE, self._ca, now=now // 1000)
        if device_id is not None and cert.subject != device_id:
            raise ProtocolError("wrong_device", "HELLO certificate is another device's")
        if not cert.public_key.verify(hello.signed_message, hello.signature):
            raise ProtocolError("bad_signature", "HELLO signature does not verify")
        window = self._options.time_window_ms
        _check_time("Td", hello.td_ms, now, window)
        self._replays.check_and_add(
            cert.subject, hello.nd, expires_ms=hello.td_ms + window + 1, now_ms=now
        )
        return VerifiedHello(hello)

    def welcome(self, verified: VerifiedHello, root_key: bytes) -> tuple[PendingSession, bytes]:
        """The WELCOME frame for a verified HELLO, and the session waiting for CONFIRM."""
        if len(root_key) != ROOT_KEY_BYTES:
            raise ValueError("root key must be 16 bytes")
        hello = verified.hello
        session_id = self._random(SESSION_ID_BYTES)
        np = self._random(NONCE_BYTES)
        kp = self._random(KP_BYTES)
        tp = self._now()
        ciphertext = hello.certificate.public_key.encrypt(kp)
        prefix = welcome_prefix(session_id, self._cert_bytes, tp, np, ciphertext)
        frame = prefix + self._signer.sign(welcome_signed_message(hello.raw, prefix))
        keys = derive_session_keys(
            root_key,
            kp,
            session_salt(hello.nd, np),
            session_info(verified.device_id, session_id, hello.td_ms, tp),
        )
        channel = self._options.channel(
            verified.device_id, session_id, keys, Direction.DOWN, self._now
        )
        pending = PendingSession(
            channel,
            transcript_hash(hello.raw, frame),
            tp + self._options.time_window_ms,
            self._now,
        )
        return pending, frame

    def _root_key_failed(self, exc: AnjuError) -> ProtocolError:
        if isinstance(exc, ProtocolError):
            return exc
        return ProtocolError("device_rejected", "device unknown or revoked")

    def respond(
        self, frame: bytes, *, device_id: str | None = None
    ) -> tuple[PendingSession, bytes]:
        """check_hello, the (synchronous) ``lookup`` of the root key, then welcome."""
        verified = self.check_hello(frame, device_id=device_id)
        if self._lookup is None:
            raise ValueError("no root-key lookup configured")
        try:
            root_key = self._lookup(verified.certificate)
        except AnjuError as exc:
            raise self._root_key_failed(exc) from None
        if inspect.isawaitable(root_key):
            if inspect.iscoroutine(root_key):
                root_key.close()  # never awaited: close it rather than leak a warning
            raise TypeError("lookup is asynchronous: use respond_async")
        return self.welcome(verified, root_key)

    async def respond_async(
        self, frame: bytes, *, device_id: str | None = None
    ) -> tuple[PendingSession, bytes]:
        """As :meth:`respond`, awaiting ``lookup`` when it is a coroutine function."""
        verified = self.check_hello(frame, device_id=device_id)
        if self._lookup is None:
            raise ValueError("no root-key lookup configured")
        try:
            result = self._lookup(verified.certificate)
            root_key = await result if inspect.isawaitable(result) else result
        except AnjuError as exc:
            raise self._root_key_failed(exc) from None
        return self.welcome(verified, root_key)
