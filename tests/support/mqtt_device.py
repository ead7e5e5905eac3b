"""A minimal device for gateway tests: gmqtt + a software SE + the protocol's device side.

Only what the gateway tests need (the full firmware client is ``anju.device.client``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50, MQTTv311

from anju.accounts.service import AccountService
from anju.devices.ca import ca_public_key
from anju.devices.lifecycle import Status
from anju.devices.provisioning import ProvisioningService
from anju.devices.service import DeviceService
from anju.gateway.client import BrokerAddress
from anju.kit.crypto import random_bytes
from anju.platform import Platform
from anju.protocol.channel import SecureChannel
from anju.protocol.handshake import DeviceHandshake
from anju.protocol.keys import MQTT_PASSWORD_LABEL
from anju.protocol.topics import down_topic, session_up_topic, up_topic
from tests.support.registry import PIN, Made, manufacture


async def make_org(platform: Platform, name: str = "Org A") -> str:
    """An organisation to register devices to; its id."""
    async with platform.db.transaction() as session:
        org = await AccountService(platform, session).create_organisation(
            name, "landlord_company", actor="cli"
        )
        return org.id


async def manufacture_registered(
    platform: Platform, tmp_path: Path, count: int = 1, *, org_id: str | None = None
) -> list[Made]:
    """Factory step through the service, then the operator registers each to ``org_id``
    (SEs unlocked with their PIN, as the firmware does at power-up)."""
    org_id = org_id or await make_org(platform, f"Org {random_bytes(4).hex()}")
    made = await manufacture(platform, tmp_path, count)
    async with platform.db.transaction() as session:
        svc = ProvisioningService(platform, session)
        for device in made:
            device.se.verify_pin(PIN)
            await svc.register_device_as_operator(device.device_id, org_id)
    return made


async def set_status(platform: Platform, device_id: str, status: Status) -> None:
    """Move a device to ``status`` through the registry's lifecycle rules."""
    async with platform.db.transaction() as session:
        await DeviceService(platform, session).operator_lifecycle(
            device_id, status, status.value, None, actor="cli"
        )


def mqtt_password_of(made: Made) -> str:
    """The password the device's SE computes for the broker."""
    return made.se.hmac(MQTT_PASSWORD_LABEL, bytes.fromhex(made.device_id)).hex()


class TestDevice:
    """One device connection: HELLO/WELCOME/CONFIRM, then sealed messages both ways."""

    __test__ = False

    def __init__(
        self,
        made: Made,
        platform: Platform,
        address: BrokerAddress,
        *,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.made = made
        self.device_id = made.device_id
        self.address = address
        self._ca = ca_public_key(platform.keys)
        self._now = now_ms or (lambda: int(platform.clock.now().timestamp() * 1000))
        self.downlink: asyncio.Queue[bytes] = asyncio.Queue()
        self.channel: SecureChannel | None = None
        self.acked_events: list[str] = []  # ids from the platform's evt_acks, in order
        self.client: Any = None
        self._subscribed = asyncio.Event()

    async def connect(
        self, *, password: str | None = None, client_id: str | None = None, subscribe: bool = True
    ) -> None:
        """Connect (raises gmqtt's MQTTConnectError when the broker refuses)."""
        client = gmqtt.Client(client_id or self.device_id, clean_session=True)
        client.set_auth_credentials(self.device_id, password or mqtt_password_of(self.made))
        client.set_config({"reconnect_retries": 0})
        client.on_message = self._on_message
        client.on_subscribe = lambda *_: self._subscribed.set()
        self.client = client
        version = MQTTv50 if self.address.version == 5 else MQTTv311
        await client.connect(self.address.host, self.address.port, version=version, keepalive=30)
        if subscribe:
            self.granted = await self.subscribe(down_topic(self.device_id))

    async def subscribe(self, topic: str) -> int:
        """Subscribe and return the granted QoS (≥ 128: refused)."""
        self._subscribed.clear()
        granted: list[int] = []
        self.client.on_subscribe = lambda _c, _mid, qos, _p: (
            granted.extend(qos),
            self._subscribed.set(),
        )
        self.client.subscribe(topic, qos=1)
        await asyncio.wait_for(self._subscribed.wait(), 5)
        return granted[0]

    def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, props: Any) -> int:
        self.downlink.put_nowait(payload)
        return 0

    async def handshake(self, *, within: float = 10.0) -> SecureChannel:
        """Run a handshake through the broker and the gateway; the confirmed channel."""
        hs = DeviceHandshake(
            self.device_id, self.made.certificate, self.made.se, self._ca, now_ms=self._now
        )
        self.publish(up_topic(self.device_id), hs.hello())
        welcome = await asyncio.wait_for(self.downlink.get(), within)
        channel, confirm = hs.on_welcome(welcome)
        self.channel = channel
        self.publish(session_up_topic(self.device_id, self.instance), confirm)
        return channel

    @property
    def instance(self) -> int:
        assert self.channel is not None
        return int.from_bytes(self.channel.session_id[:2], "big")

    @property
    def data_topic(self) -> str:
        return session_up_topic(self.device_id, self.instance)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def send(self, message: dict[str, Any]) -> bytes:
        """Seal and publish a message on the session topic; the frame sent."""
        assert self.channel is not None
        frame = self.channel.seal(message)
        self.publish(self.data_topic, frame)
        return frame

    async def receive(self, *, within: float = 10.0, acks: bool = False) -> dict[str, Any]:
        """The next downlink DATA message, decrypted. ``evt_ack`` messages are collected in
        :attr:`acked_events` and skipped unless ``acks``."""
        assert self.channel is not None
        async with asyncio.timeout(within):
            while True:
                message = self.channel.open(await self.downlink.get())
                if message["t"] != "evt_ack":
                    return message
                self.acked_events.extend(message["ids"])
                if acks:
                    return message

    async def close(self) -> None:
        if self.client is not None:
            await self.client.disconnect()
            self.client = None


def event(event_id: str, kind: str = "door.opened", at: int = 0, **data: Any) -> dict[str, Any]:
    return {"t": "evt", "id": event_id, "at": at, "kind": kind, "data": data}
