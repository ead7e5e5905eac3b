"""The platform's one MQTT connection (gmqtt): subscribes to the uplink, publishes the downlink.

QoS 1 both ways. HELLOs arrive on ``anju/v1/dev/+/up`` — as an MQTT 5 shared subscription
(``$share/anju/…``) on Mosquitto, so several gateway processes split them, or as a plain
subscription on the embedded broker (MQTT 3.1.1) — and the DATA frames of this instance's
sessions on ``anju/v1/dev/+/up/{instance}``. Subscriptions are renewed on every (re)connect.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import gmqtt
from gmqtt.mqtt.constants import MQTTv50, MQTTv311

from anju.errors import ConfigurationError
from anju.protocol.topics import (
    PLATFORM_SUBSCRIPTION,
    instance_subscription,
)

logger = logging.getLogger("anju.gateway.client")

MessageHandler = Callable[[str, bytes], None]
SUBSCRIBE_TIMEOUT_SECONDS = 10.0
#: MQTT 5 Receive Maximum the gateway announces: how many QoS 1 messages the broker may have
#: unacknowledged towards it (Mosquitto's default would be 20).
RECEIVE_MAXIMUM = 65535


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is and how to speak to it."""

    host: str
    port: int
    version: int = 5  # 5 (shared subscriptions) or 3 (MQTT 3.1.1: embedded broker)
    tls: bool = False

    @property
    def shared(self) -> bool:
        return self.version == 5


def parse_mqtt_url(url: str) -> BrokerAddress:
    """``mqtt://host:1883`` or ``mqtts://host:8883``; ``?version=3`` for MQTT 3.1.1 brokers."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigurationError(
            f"MQTT 地址无效 / invalid MQTT URL {url!r}: use mqtt://host:port or mqtts://host:port"
        )
    tls = parts.scheme == "mqtts"
    version_text = parse_qs(parts.query).get("version", ["5"])[0]
    if version_text not in ("3", "5"):
        raise ConfigurationError("MQTT version must be 3 (3.1.1) or 5")
    return BrokerAddress(
        parts.hostname, parts.port or (8883 if tls else 1883), int(version_text), tls
    )


class GatewayClient:
    """Connects as ``anju-gateway``, subscribes for one instance, hands messages to a handler."""

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        share_group: str = "anju",
        username: str,
        password: str,
        instance: int,
        on_message: MessageHandler,
        keepalive: int = 30,
    ) -> None:
        self.address = address
        self.instance = instance
        self._handler = on_message
        self._keepalive = keepalive
        self._share_group = share_group
        properties: dict[str, Any] = {}
        if address.version == 5:
            properties["receive_maximum"] = RECEIVE_MAXIMUM
        self._client = gmqtt.Client(client_id, clean_session=True, **properties)
        self._client.set_auth_credentials(username, password)
        self._client.set_config({"reconnect_retries": -1, "reconnect_delay": 1})
        self._client.on_message = self._on_message
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._subscribed = asyncio.Event()
        self._awaiting: set[int] = set()
        self._filters: dict[int, str] = {}
        self.refused_subscriptions: list[str] = []
        self.published = 0
        self._closing = False

    @property
    def subscriptions(self) -> list[str]:
        """The topic filters this instance subscribes to."""
        shared = f"$share/{self._share_group}/{PLATFORM_SUBSCRIPTION}"
        hello = shared if self.address.shared else PLATFORM_SUBSCRIPTION
        return [hello, instance_subscription(self.instance)]

    async def connect(self) -> None:
        """Connect and wait until both subscriptions are granted."""
        version = MQTTv50 if self.address.version == 5 else MQTTv311
        context: ssl.SSLContext | bool = ssl.create_default_context() if self.address.tls else False
        await self._client.connect(
            self.address.host,
            self.address.port,
            ssl=context,
            keepalive=self._keepalive,
            version=version,
        )
        try:
            await asyncio.wait_for(self._subscribed.wait(), SUBSCRIBE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise ConfigurationError("MQTT broker did not answer the gateway's SUBSCRIBE") from None
        if self.refused_subscriptions:
            raise ConfigurationError(
                "MQTT 代理拒绝了网关的订阅 / the broker refused the gateway's subscriptions "
                f"{self.refused_subscriptions}: check its ACL (docs/gateway.md)"
            )

    async def disconnect(self) -> None:
        """Close the connection (no reconnect)."""
        self._closing = True
        await self._client.disconnect()

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish one downlink frame, QoS 1, not retained."""
        self._client.publish(topic, payload, qos=1, retain=False)
        self.published += 1

    # --- gmqtt callbacks -----------------------------------------------------------------
    def _on_connect(self, client: Any, flags: Any, rc: Any, properties: Any) -> None:
        self._subscribed.clear()
        self._awaiting.clear()
        self.refused_subscriptions.clear()
        for topic in self.subscriptions:
            mid = client.subscribe(topic, qos=1)
            self._awaiting.add(mid)
            self._filters[mid] = topic
        logger.info("gateway instance %04x connected to the MQTT broker", self.instance)

    def _on_subscribe(self, client: Any, mid: int, qos: Any, properties: Any) -> None:
        if any(q >= 128 for q in qos):
            self.refused_subscriptions.append(self._filters.get(mid, "?"))
        self._awaiting.discard(mid)
        if not self._awaiting:
            self._subscribed.set()

    def _on_disconnect(self, client: Any, packet: Any, exc: Any = None) -> None:
        if not self._closing:
            logger.warning(
                "gateway instance %04x lost the MQTT broker; reconnecting", self.instance
            )

    def _on_message(
        self, client: Any, topic: str, payload: bytes, qos: int, properties: Any
    ) -> int:
        self._handler(topic, payload)
        return 0
