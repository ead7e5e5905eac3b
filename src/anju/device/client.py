"""The device's connection to the platform (docs/device-sdk.md).

MQTT 3.1.1 over gmqtt (works on the embedded amqtt broker and on Mosquitto): client id =
username = device id, password from the secure element, QoS 1, persistent broker session. On top
of it the protocol of docs/protocol.md: HELLO/WELCOME/CONFIRM with the SE as key store, DATA
frames through a :class:`~anju.protocol.channel.SecureChannel`, rekey on the channel's
thresholds, on the platform's request or after a long downlink silence, and reconnection with
exponential backoff and full jitter followed by a fresh handshake.

Authentication failures of platform-side frames (forged WELCOME signatures or certificates,
DATA frames that fail their tag) are reported to the SE, whose durable failure counter destroys
every key at its threshold (L16 d); the client then stops for good (:class:`DeviceKeysDestroyed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gmqtt
from gmqtt.mqtt.constants import MQTTv311
from gmqtt.storage import PersistentStorage

from anju.errors import AnjuError
from anju.kit.aio import wait_any
from anju.kit.crypto import SM2PublicKey
from anju.protocol.certificates import Certificate
from anju.protocol.channel import DuplicateFrame, SecureChannel
from anju.protocol.errors import ProtocolError
from anju.protocol.frames import SESSION_ID_BYTES, FrameType, frame_type
from anju.protocol.handshake import ChannelOptions, DeviceHandshake, DeviceKeyStore
from anju.protocol.keys import MQTT_PASSWORD_LABEL
from anju.protocol.reset import check_reset
from anju.protocol.topics import (
    check_device_id,
    down_topic,
    instance_of_session,
    session_up_topic,
    up_topic,
)

log = logging.getLogger(__name__)

Clock = Callable[[], int]
MessageHandler = Callable[[dict[str, Any]], Awaitable[None]]
SessionHandler = Callable[[], Awaitable[None]]

#: Failures of platform-side frames that only a forger (or a broken platform) produces; each is
#: reported to the SE's durable failure counter. Configuration mistakes (a gateway certificate
#: of another CA, an expired one, a stale clock) are not counted: they would brick devices.
ATTACK_CODES = frozenset({"bad_tag", "bad_signature", "cert_bad_signature"})


def system_ms() -> int:
    """Unix time in milliseconds."""
    return time.time_ns() // 1_000_000


class DeviceSecureElement(DeviceKeyStore, Protocol):
    """What the client needs from the SE beyond the handshake's four operations."""

    def hmac(self, label: str, data: bytes) -> bytes:
        """HMAC-SM3 under a key derived from the root key (the platform can compute it)."""
        ...

    def report_failure(self, kind: str) -> None:
        """Count an abnormal event durably; the SE zeroizes itself at its threshold."""
        ...

    def clear_failures(self) -> None:
        """Reset the failure counter after a mutually authenticated session."""
        ...


class DeviceKeysDestroyed(AnjuError):
    """The secure element destroyed its keys (attack response); the device cannot talk again."""

    status, code = 410, "device_keys_destroyed"


class NotConnected(AnjuError):
    """No established session to send on right now; try again after the next session."""

    status, code = 503, "device_not_connected"


def mqtt_password(se: DeviceSecureElement, device_id: str) -> str:
    """The broker password: lowercase hex of ``se.hmac("anju/mqtt-password/v1", device id)``."""
    return se.hmac(MQTT_PASSWORD_LABEL, bytes.fromhex(check_device_id(device_id))).hex()


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits U(0, min(cap, base · 2ⁿ)) seconds."""

    base_s: float = 1.0
    cap_s: float = 60.0

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the wait before reconnect attempt ``attempt`` (0-based)."""
        return min(self.cap_s, self.base_s * 2.0 ** min(attempt, 64))

    def delay(self, attempt: int, rand: Callable[[], float]) -> float:
        """The wait: ``rand()`` (uniform in [0, 1)) times the ceiling."""
        return rand() * self.ceiling(attempt)


@dataclass(frozen=True)
class DeviceIdentity:
    """What the firmware stores besides its SE: id, certificate, the CA it trusts."""

    device_id: str
    certificate: Certificate
    ca_public_key: SM2PublicKey


@dataclass(frozen=True)
class ClientOptions:
    """Where and how to connect; defaults suit a real lock."""

    host: str = "127.0.0.1"
    port: int = 1883
    keepalive_s: int = 60
    connect_timeout_s: float = 10.0
    handshake_timeout_s: float = 10.0
    flush_timeout_s: float = 30.0
    #: No authentic downlink frame for this long: start a rekey, which also finds out whether the
    #: gateway instance holding the session is still alive (it may have restarted). 0 = never.
    downlink_silence_rekey_s: float = 900.0
    #: At most one handshake per this many seconds is started by a gateway's RESET.
    reset_min_interval_s: float = 5.0
    backoff: Backoff = field(default_factory=Backoff)
    channel: ChannelOptions = field(default_factory=ChannelOptions)


@dataclass
class ClientStats:
    """Counters for the firmware's state reports and the simulator's summary."""

    connects: int = 0
    connect_failures: int = 0
    sessions: int = 0
    rekeys: int = 0
    resets: int = 0
    handshake_failures: int = 0
    frames_sent: int = 0
    frames_received: int = 0
    frames_dropped: int = 0
    attack_signals: int = 0
    last_error: str | None = None
    delays: deque[float] = field(default_factory=lambda: deque(maxlen=32))


class _Mqtt(gmqtt.Client):  # type: ignore[misc]  # gmqtt ships no type information
    """gmqtt's client without its own reconnect: :class:`DeviceClient` reconnects with backoff,
    jitter and a fresh handshake, and a stale automatic reconnect must never race it (a second
    connection with the same client id would take the session over)."""

    async def reconnect(self, delay: bool = False) -> None:
        return None


@dataclass
class _PendingHandshake:
    handshake: DeviceHandshake
    result: asyncio.Future[tuple[SecureChannel, bytes]]


class _Connection:
    """One broker connection and what belongs to it."""

    def __init__(self, mqtt: _Mqtt, inflight: PersistentStorage) -> None:
        self.mqtt = mqtt
        self.inflight = inflight
        self.lost = asyncio.Event()
        self.inbound: asyncio.Queue[bytes] = asyncio.Queue()


class DeviceClient:
    """Keeps one device connected: run() until stop() or until the SE destroyed its keys."""

    def __init__(
        self,
        identity: DeviceIdentity,
        se: DeviceSecureElement,
        *,
        on_message: MessageHandler,
        on_session: SessionHandler | None = None,
        options: ClientOptions | None = None,
        now_ms: Clock = system_ms,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.identity = identity
        self.device_id = check_device_id(identity.device_id)
        self.options = options or ClientOptions()
        self.stats = ClientStats()
        self._se = se
        self._on_message = on_message
        self._on_session = on_session
        self._now = now_ms
        self._rand = rand
        self._up = up_topic(self.device_id)
        self._down = down_topic(self.device_id)
        self._conn: _Connection | None = None
        self._channel: SecureChannel | None = None
        self._previous: SecureChannel | None = None  # receives in-flight frames after a rekey
        self._data_topic = ""
        self._pending: _PendingHandshake | None = None
        # session id -> the gateway key its WELCOME authenticated (verifies that session's RESET)
        self._gateway_keys: dict[bytes, SM2PublicKey] = {}
        self._last_reset = float("-inf")
        self._rekey_task: asyncio.Task[None] | None = None
        self._last_downlink = time.monotonic()
        self._stopping = asyncio.Event()
        self._destroyed: DeviceKeysDestroyed | None = None

    # -- public ---------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while a session is established on a live broker connection."""
        conn = self._conn
        return self._channel is not None and conn is not None and not conn.lost.is_set()

    @property
    def keys_destroyed(self) -> bool:
        """True once the SE zeroized itself; the client will never connect again."""
        return self._destroyed is not None

    @property
    def session_id(self) -> bytes | None:
        """The current session's id (its first two bytes name the gateway instance)."""
        return self._channel.session_id if self._channel is not None else None

    def send(self, message: dict[str, Any]) -> None:
        """Seal ``message`` in the current session and publish it (QoS 1); NotConnected if none.

        Publishing only queues the bytes; :meth:`flush` waits for the broker's acknowledgements.
        """
        channel, conn = self._channel, self._conn
        if channel is None or conn is None or conn.lost.is_set():
            raise NotConnected("no session with the platform right now")
        frame = channel.seal(message)
        conn.mqtt.publish(self._data_topic, frame, qos=1)
        self.stats.frames_sent += 1
        self._check_rekey(channel)

    async def flush(self) -> None:
        """Wait until the broker acknowledged (PUBACK) every frame published so far on this
        connection. NotConnected if the connection is lost first; TimeoutError after
        ``options.flush_timeout_s``."""
        conn = self._conn
        if conn is None or conn.lost.is_set():
            raise NotConnected("no broker connection")
        drained = asyncio.ensure_future(conn.inflight.wait_empty())
        lost = asyncio.ensure_future(conn.lost.wait())
        try:
            done, _ = await asyncio.wait(
                {drained, lost},
                timeout=self.options.flush_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in (drained, lost):
                task.cancel()
        if drained in done and not drained.cancelled():
            return
        if lost in done:
            raise NotConnected("broker connection lost before the acknowledgements")
        raise TimeoutError("broker did not acknowledge in time")

    def drop_connection(self) -> None:
        """Close the broker connection now; run() reconnects after its backoff delay."""
        conn = self._conn
        if conn is not None:
            conn.lost.set()

    def request_rekey(self) -> None:
        """Start a new handshake on the current connection (no-op if one is running)."""
        if self._channel is not None and (self._rekey_task is None or self._rekey_task.done()):
            self._rekey_task = asyncio.create_task(self._rekey())

    async def stop(self) -> None:
        """Ask run() to disconnect and return."""
        self._stopping.set()

    async def run(self) -> None:
        """Connect, handshake and serve; reconnect with backoff until stop().

        Raises DeviceKeysDestroyed when the SE zeroized itself (attack response).
        """
        attempt = 0
        while not self._stopping.is_set():
            established = False
            try:
                established = await self._connection()
            except DeviceKeysDestroyed:
                raise
            except (OSError, TimeoutError, gmqtt.MQTTConnectError, AnjuError) as exc:
                self.stats.last_error = getattr(exc, "code", None) or type(exc).__name__
                log.info("device %s: connection failed: %s", self.device_id, exc)
                self._check_alive()  # e.g. the SE refused the password HMAC: zeroized
            if self._destroyed is not None:
                raise self._destroyed
            if self._stopping.is_set():
                break
            if established:
                attempt = 0
            delay = self.options.backoff.delay(attempt, self._rand)
            attempt += 1
            self.stats.delays.append(delay)
            await wait_any(self._stopping, within=delay)

    # -- one connection -------------------------------------------------------------------------
    async def _connection(self) -> bool:
        """One broker connection from CONNECT to loss; True if a session was established."""
        options = self.options
        inflight = PersistentStorage()
        mqtt = _Mqtt(self.device_id, clean_session=False, persistent_storage=inflight)
        conn = _Connection(mqtt, inflight)
        mqtt.set_auth_credentials(self.device_id, mqtt_password(self._se, self.device_id))
        mqtt.on_message = self._make_receiver(conn)
        mqtt.on_disconnect = lambda _client, _packet, _exc=None: conn.lost.set()
        self._conn = conn
        established = False
        reader = asyncio.create_task(self._read(conn))
        try:
            try:
                await asyncio.wait_for(
                    mqtt.connect(
                        options.host, options.port, keepalive=options.keepalive_s, version=MQTTv311
                    ),
                    options.connect_timeout_s,
                )
            except BaseException:
                self.stats.connect_failures += 1
                raise
            self.stats.connects += 1
            mqtt.subscribe(self._down, qos=1)
            channel = await self._handshake(conn)
            self._install(channel)
            established = True
            self.stats.sessions += 1
            if self._on_session is not None:
                await self._on_session()
            await self._serve(conn)
        finally:
            conn.lost.set()
            self._channel = self._previous = None
            self._pending = None
            self._gateway_keys.clear()
            if self._rekey_task is not None:
                self._rekey_task.cancel()
                self._rekey_task = None
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await self._close(mqtt)
        return established

    async def _close(self, mqtt: _Mqtt) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(mqtt.disconnect(), 2.0)

    async def _serve(self, conn: _Connection) -> None:
        """Wait for loss, stop, or downlink silence (which starts a rekey)."""
        silence = self.options.downlink_silence_rekey_s
        while not conn.lost.is_set() and not self._stopping.is_set():
            lost = asyncio.ensure_future(conn.lost.wait())
            stop = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait({lost, stop}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost.cancel()
                stop.cancel()
            if silence and time.monotonic() - self._last_downlink > silence:
                self._last_downlink = time.monotonic()
                self.request_rekey()

    def _make_receiver(self, conn: _Connection) -> Callable[..., int]:
        def receive(_client: Any, _topic: str, payload: bytes, _qos: int, _props: Any) -> int:
            conn.inbound.put_nowait(bytes(payload))
            return 0

        return receive

    async def _read(self, conn: _Connection) -> None:
        """Process downlink frames one at a time, in arrival order (sequence numbers)."""
        while True:
            frame = await conn.inbound.get()
            try:
                await self._handle(frame)
            except DeviceKeysDestroyed:
                conn.lost.set()
                return
            except AnjuError as exc:
                log.warning("device %s: frame handling failed: %s", self.device_id, exc)

    # -- handshake and rekey --------------------------------------------------------------------
    async def _handshake(self, conn: _Connection) -> SecureChannel:
        """HELLO → WELCOME → CONFIRM; the new channel (CONFIRM already published)."""
        handshake = DeviceHandshake(
            self.device_id,
            self.identity.certificate,
            self._se,
            self.identity.ca_public_key,
            now_ms=self._now,
            options=self.options.channel,
        )
        pending = _PendingHandshake(handshake, asyncio.get_running_loop().create_future())
        self._pending = pending
        try:
            conn.mqtt.publish(self._up, handshake.hello(), qos=1)
            channel, confirm = await asyncio.wait_for(
                pending.result, self.options.handshake_timeout_s
            )
        except (AnjuError, TimeoutError):
            self.stats.handshake_failures += 1
            raise
        finally:
            if self._pending is pending:
                self._pending = None
        conn.mqtt.publish(self._topic_of(channel), confirm, qos=1)
        self.stats.frames_sent += 1
        if handshake.gateway_public_key is not None:
            self._gateway_keys[channel.session_id] = handshake.gateway_public_key
        # The gateway proved its key over our fresh HELLO: a mutually authenticated session.
        self._se.clear_failures()
        return channel

    def _topic_of(self, channel: SecureChannel) -> str:
        """DATA frames of a session go to the gateway instance its session id names."""
        return session_up_topic(self.device_id, instance_of_session(channel.session_id))

    def _install(self, channel: SecureChannel) -> None:
        self._previous, self._channel = self._channel, channel
        live = {c.session_id for c in (self._previous, channel) if c is not None}
        for session_id in set(self._gateway_keys) - live:
            del self._gateway_keys[session_id]
        self._data_topic = self._topic_of(channel)
        self._last_downlink = time.monotonic()

    async def _rekey(self) -> None:
        conn = self._conn
        if conn is None or conn.lost.is_set():
            return
        try:
            channel = await self._handshake(conn)
        except DeviceKeysDestroyed:
            conn.lost.set()
            return
        except (AnjuError, TimeoutError) as exc:
            # The gateway instance holding the session may be gone: start over.
            log.info("device %s: rekey failed (%s); reconnecting", self.device_id, exc)
            conn.lost.set()
            return
        self._install(channel)
        self.stats.rekeys += 1
        if self._on_session is not None:
            # A new session may be on another gateway instance (after a RESET, say): what the
            # old one received but did not acknowledge must be sent again.
            await self._on_session()

    def _check_rekey(self, channel: SecureChannel) -> None:
        if channel is self._channel and channel.needs_rekey:
            self.request_rekey()

    # -- downlink frames ------------------------------------------------------------------------
    async def _handle(self, frame: bytes) -> None:
        self.stats.frames_received += 1
        try:
            kind = frame_type(frame)
        except ProtocolError:
            self.stats.frames_dropped += 1
            return
        if kind is FrameType.WELCOME:
            self._on_welcome(frame)
            return
        if kind is FrameType.RESET:
            self._on_reset(frame)
            return
        if kind is not FrameType.DATA:
            self.stats.frames_dropped += 1
            return
        session_id = frame[2 : 2 + SESSION_ID_BYTES]
        channel = next(
            (c for c in (self._channel, self._previous) if c and c.session_id == session_id),
            None,
        )
        if channel is None:
            # Another (ended) session's frame, e.g. queued by the broker while we were away.
            self.stats.frames_dropped += 1
            return
        try:
            message = channel.open(frame, device_id=self.device_id)
        except DuplicateFrame:
            return
        except ProtocolError as exc:
            self.stats.frames_dropped += 1
            self._refused(exc)
            return
        self._last_downlink = time.monotonic()
        if message["t"] == "rekey":
            self.request_rekey()
        else:
            await self._on_message(message)
        self._check_rekey(channel)

    def _on_welcome(self, frame: bytes) -> None:
        pending = self._pending
        if pending is None or pending.result.done():
            self.stats.frames_dropped += 1  # no HELLO waiting: one WELCOME per HELLO
            return
        try:
            result = pending.handshake.on_welcome(frame)
        except AnjuError as exc:
            pending.result.set_exception(exc)
            if isinstance(exc, ProtocolError):
                self._refused(exc)
            self._check_alive()  # a failed decryption inside the SE counts there too
            return
        pending.result.set_result(result)

    def _on_reset(self, frame: bytes) -> None:
        """The gateway no longer holds our current session: handshake again (rate-limited).

        A RESET that does not verify is dropped but not reported to the SE: it grants nothing,
        and counting it could let whoever can publish to our topic brick the device."""
        channel = self._channel
        key = self._gateway_keys.get(channel.session_id) if channel is not None else None
        try:
            if channel is None or key is None:
                raise ProtocolError("wrong_session", "no session to reset")
            check_reset(
                frame,
                device_id=self.device_id,
                sessions=[(channel.session_id, key)],
                now_ms=self._now(),
                window_ms=self.options.channel.time_window_ms,
            )
        except ProtocolError as exc:
            self.stats.frames_dropped += 1
            self.stats.last_error = exc.code
            return
        now = time.monotonic()
        if now - self._last_reset < self.options.reset_min_interval_s:
            self.stats.frames_dropped += 1
            return
        self._last_reset = now
        self.stats.resets += 1
        log.info("device %s: the gateway reset our session; handshaking again", self.device_id)
        self.request_rekey()

    def _refused(self, exc: ProtocolError) -> None:
        """A refused platform-side frame: forgeries count towards the SE's attack threshold."""
        self.stats.last_error = exc.code
        if exc.code not in ATTACK_CODES:
            return
        self.stats.attack_signals += 1
        log.warning("device %s: forged platform frame (%s)", self.device_id, exc.code)
        try:
            self._se.report_failure(f"platform.{exc.code}")
        except AnjuError as error:
            if getattr(error, "code", "") != "se_zeroized":
                raise
        self._check_alive()

    def _check_alive(self) -> None:
        """Raise DeviceKeysDestroyed (and remember it) if the SE has zeroized itself."""
        try:
            self._se.public_key  # noqa: B018  # every SE call refuses once zeroized
        except AnjuError as exc:
            if getattr(exc, "code", "") != "se_zeroized":
                raise
            self._destroyed = DeviceKeysDestroyed(
                "安全元件已销毁密钥 / the secure element destroyed its keys",
                details={"device_id": self.device_id},
            )
            self._stopping.set()
            raise self._destroyed from None
