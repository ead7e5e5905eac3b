"""A stand-in for the platform's gateway, for testing the device SDK on the system Mosquitto.

It is deliberately small: its own CA and gateway key (made in the test), the protocol's
``GatewayHandshake`` and ``SessionTable``, and lists of what it received. It subscribes only to
the devices it was told about, so tests with unique device ids never see each other's traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv311

from anju.device.client import DeviceIdentity, system_ms
from anju.device.secure_element import SoftwareSecureElement
from anju.kit.crypto import SM2PrivateKey, random_bytes
from anju.protocol.certificates import Certificate, CertKind, issue_certificate
from anju.protocol.channel import DuplicateFrame, SessionTable
from anju.protocol.errors import ProtocolError
from anju.protocol.frames import FrameType, frame_type
from anju.protocol.handshake import GatewayHandshake, PendingSession
from anju.protocol.reset import reset_frame
from anju.protocol.topics import PREFIX, down_topic
from tests.support.services import MOSQUITTO_HOST, MOSQUITTO_PORT, require_service, tcp_reachable

SE_PIN = b"firmware-pairing-secret"


def require_mosquitto() -> None:
    """Skip locally (fail in CI) when the test broker is not running."""
    require_service("Mosquitto", tcp_reachable(MOSQUITTO_HOST, MOSQUITTO_PORT))


@dataclass
class Pki:
    """A device CA and a gateway key certified by it."""

    ca_key: SM2PrivateKey = field(default_factory=SM2PrivateKey.generate)
    gateway_key: SM2PrivateKey = field(default_factory=SM2PrivateKey.generate)

    def gateway_certificate(self) -> Certificate:
        now = int(time.time())
        return issue_certificate(
            self.ca_key,
            kind=CertKind.GATEWAY,
            subject="gw-test",
            se_id="",
            product="anju-gateway",
            public_key=self.gateway_key.public_key,
            not_before=now - 3600,
            not_after=now + 86400,
        )


@dataclass
class MadeDevice:
    """A device made like at the factory: SE in ``path/se``, certificate from the CA."""

    identity: DeviceIdentity
    se: SoftwareSecureElement
    root_key: bytes
    path: Path

    @property
    def device_id(self) -> str:
        return self.identity.device_id

    def reopen_se(self) -> SoftwareSecureElement:
        """The SE as a restarted firmware opens it (PIN verified)."""
        se = SoftwareSecureElement.open(self.path / "se")
        se.verify_pin(SE_PIN)
        return se


def make_device(pki: Pki, path: Path, *, failure_threshold: int = 16) -> MadeDevice:
    """Manufacture a software SE for a fresh device id and certify its key."""
    device_id = random_bytes(16).hex()
    se, record = SoftwareSecureElement.manufacture(
        path / "se", device_id=device_id, pin=SE_PIN, failure_threshold=failure_threshold
    )
    se.verify_pin(SE_PIN)
    now = int(time.time())
    certificate = issue_certificate(
        pki.ca_key,
        kind=CertKind.DEVICE,
        subject=device_id,
        se_id=record.se_id,
        product="lock-x1",
        public_key=record.public_key,
        not_before=now - 3600,
        not_after=now + 86400,
    )
    identity = DeviceIdentity(device_id, certificate, pki.ca_key.public_key)
    return MadeDevice(identity, se, record.root_key, path)


class FakeGateway:
    """Answers HELLOs, opens DATA frames, records messages, sends commands."""

    def __init__(
        self,
        pki: Pki,
        devices: list[MadeDevice],
        *,
        instance: int = 0x00A7,
        gateway_pki: Pki | None = None,
        now_ms: Callable[[], int] = system_ms,
        ack_events: bool = True,
    ) -> None:
        self.instance = instance
        self.ack_events = ack_events  # answer each evt with an evt_ack, as the platform does
        self.root_keys = {d.device_id: d.root_key for d in devices}
        gateway = gateway_pki or pki  # an impostor brings its own CA and key
        self.gateway_key = gateway.gateway_key
        self.handshake = GatewayHandshake(
            gateway.gateway_certificate(),
            gateway.gateway_key,
            pki.ca_key.public_key,
            lambda cert: self.root_keys[cert.subject],
            now_ms=now_ms,
            random_bytes=self._random,
        )
        self.sessions = SessionTable()
        self.pending: dict[str, PendingSession] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {d: [] for d in self.root_keys}
        self.data_topics: set[str] = set()
        self.errors: list[str] = []
        self.duplicates = 0
        self.hellos = 0
        self.confirmed = 0
        self._changed = asyncio.Event()
        self._mqtt: gmqtt.Client | None = None

    def _random(self, n: int) -> bytes:
        # Session ids carry the instance number in their first two bytes (wave-2 design).
        if n == 8:
            return self.instance.to_bytes(2, "big") + random_bytes(6)
        return random_bytes(n)

    async def start(self) -> None:
        client = gmqtt.Client(f"fake-gw-{uuid.uuid4().hex}")
        client.on_message = self._on_message
        await client.connect(MOSQUITTO_HOST, MOSQUITTO_PORT, version=MQTTv311)
        self._mqtt = client  # before subscribing: a HELLO may be waiting for us
        for device_id in self.root_keys:
            client.subscribe(f"{PREFIX}{device_id}/up/#", qos=1)
        await asyncio.sleep(0.2)  # let SUBACKs land before the test relies on them

    async def stop(self) -> None:
        if self._mqtt is not None:
            await self._mqtt.disconnect()
            self._mqtt = None

    # -- receiving ------------------------------------------------------------------------------
    def _on_message(self, _client: Any, topic: str, payload: bytes, _qos: int, _p: Any) -> int:
        parts = topic[len(PREFIX) :].split("/")
        device_id = parts[0]
        try:
            kind = frame_type(payload)
            if kind is FrameType.HELLO:
                assert len(parts) == 2, "HELLO must go to the shared …/up topic"
                self.hellos += 1
                pending, welcome = self.handshake.respond(payload, device_id=device_id)
                self.pending[device_id] = pending
                self._publish(device_id, welcome)
            elif kind is FrameType.DATA:
                self.data_topics.add(topic)
                self._on_data(device_id, payload)
        except DuplicateFrame:
            self.duplicates += 1
        except ProtocolError as exc:
            self.errors.append(exc.code)
        self._changed.set()
        return 0

    def _on_data(self, device_id: str, frame: bytes) -> None:
        pending = self.pending.get(device_id)
        if pending is not None and frame[2:10] == pending.session_id:
            del self.pending[device_id]
            self.sessions.install(pending.on_confirm(frame))
            self.confirmed += 1
            return
        message = self.sessions.open(device_id, frame)
        self.messages[device_id].append(message)
        if message["t"] == "evt" and self.ack_events:
            self.send(device_id, {"t": "evt_ack", "ids": [message["id"]]})

    # -- sending --------------------------------------------------------------------------------
    def _publish(self, device_id: str, frame: bytes) -> None:
        assert self._mqtt is not None
        self._mqtt.publish(down_topic(device_id), frame, qos=1)

    def send(self, device_id: str, message: dict[str, Any]) -> bytes:
        """Seal a platform message in the device's session and publish it; the frame."""
        channel = self.sessions.get(device_id)
        assert channel is not None, "no session with that device"
        frame = channel.seal(message)
        self._publish(device_id, frame)
        return frame

    def send_cmd(
        self,
        device_id: str,
        name: str,
        args: dict[str, Any] | None = None,
        *,
        command_id: str | None = None,
        exp_ms: int | None = None,
    ) -> str:
        command_id = command_id or uuid.uuid4().hex
        exp = exp_ms if exp_ms is not None else system_ms() + 60_000
        message = {"t": "cmd", "id": command_id, "name": name, "args": args or {}, "exp": exp}
        self.send(device_id, message)
        return command_id

    def send_reset(
        self,
        device_id: str,
        session_id: bytes | None = None,
        *,
        key: SM2PrivateKey | None = None,
        now_ms: int | None = None,
    ) -> None:
        """A RESET for the device's current session (or ``session_id``), signed with the
        gateway key (or ``key``), as a restarted gateway sends it."""
        if session_id is None:
            channel = self.sessions.get(device_id)
            assert channel is not None, "no session with that device"
            session_id = channel.session_id
        signer = key or self.gateway_key
        at = system_ms() if now_ms is None else now_ms
        self._publish(device_id, reset_frame(signer, device_id, session_id, at))

    def send_raw(self, device_id: str, frame: bytes) -> None:
        self._publish(device_id, frame)

    # -- inspection -----------------------------------------------------------------------------
    def of_type(self, device_id: str, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages[device_id] if m["t"] == kind]

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 10.0) -> None:
        """Wait up to ``seconds`` until ``predicate()`` holds (checked on every frame)."""
        async with asyncio.timeout(seconds):
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.1)
