"""The embedded MQTT broker (amqtt, in-process, MQTT 3.1.1) for single-machine installations.

Two plugins enforce the same rules as the Mosquitto files (:mod:`anju.gateway.credentials`):
:class:`AnjuAuthPlugin` admits devices by their MQTT password (computed from the platform's copy
of the root key; client id must equal the username) and the gateway by its keyring secret;
:class:`AnjuTopicPlugin` applies the ACL to every publish, subscribe and delivery. amqtt moves
about 1,000 messages/s: production uses Mosquitto (docs/gateway.md).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from anju.gateway.client import BrokerAddress
from anju.gateway.credentials import (
    GATEWAY_CLIENT_PREFIX,
    GATEWAY_USERNAME,
    device_password,
    gateway_password,
    may_publish,
    may_receive,
    may_subscribe,
    passwords_equal,
)
from anju.platform import Platform

logger = logging.getLogger("anju.gateway.broker")

#: How long amqtt's shutdown may take before the client connections still open are dropped
#: (see :meth:`EmbeddedBroker.stop`), and how long it may take after that.
STOP_GRACE_SECONDS = 3.0


@dataclass
class BrokerCounters:
    connections_accepted: int = 0
    connections_refused: int = 0
    topics_denied: int = 0


class BrokerAuthority:
    """Answers the plugins' questions from the platform's database and keyring."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.counters = BrokerCounters()

    async def authenticate(
        self, client_id: str | None, username: str | None, password: str | bytes | None
    ) -> bool:
        """True for the gateway with its secret, or a device with its password and own id."""
        ok = await self._check(client_id or "", username or "", password)
        if ok:
            self.counters.connections_accepted += 1
        else:
            self.counters.connections_refused += 1
            logger.info("MQTT connection refused for username %r", (username or "")[:64])
        return ok

    async def _check(self, client_id: str, username: str, password: str | bytes | None) -> bool:
        if username == GATEWAY_USERNAME:
            return client_id.startswith(GATEWAY_CLIENT_PREFIX) and passwords_equal(
                gateway_password(self.platform.keys), password
            )
        if client_id != username:
            return False  # a device may not take over another client id
        async with self.platform.db.transaction() as session:
            expected = await device_password(self.platform.keys, session, username)
        return expected is not None and passwords_equal(expected, password)

    def allowed(self, username: str | None, topic: str | None, action: Action | None) -> bool:
        """The ACL (same as Mosquitto's)."""
        if username is None or topic is None:
            ok = False
        elif action == Action.PUBLISH:
            ok = may_publish(username, topic)
        elif action == Action.SUBSCRIBE:
            ok = may_subscribe(username, topic)
        elif action == Action.RECEIVE:
            ok = may_receive(username, topic)
        else:
            ok = False
        if not ok:
            self.counters.topics_denied += 1
        return ok


class AnjuAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt is untyped
    """amqtt authentication by :class:`BrokerAuthority`."""

    @dataclass
    class Config:
        authority: Any = None

    async def authenticate(self, *, session: Session) -> bool | None:
        authority: BrokerAuthority = self.config.authority
        return await authority.authenticate(session.client_id, session.username, session.password)


class AnjuTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]  # amqtt is untyped
    """amqtt topic ACL by :class:`BrokerAuthority`."""

    @dataclass
    class Config:
        authority: Any = None

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        authority: BrokerAuthority = self.config.authority
        return authority.allowed(session.username if session else None, topic, action)


class EmbeddedBroker:
    """amqtt on ``host:port`` with anju's plugins (port 0: any free port)."""

    def __init__(self, platform: Platform, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.authority = BrokerAuthority(platform)
        self.host = host
        self._port = port
        plugin_config = {"authority": self.authority}
        self._broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
                "plugins": {
                    f"{__name__}.AnjuAuthPlugin": plugin_config,
                    f"{__name__}.AnjuTopicPlugin": plugin_config,
                },
            }
        )

    @property
    def port(self) -> int:
        """The port it listens on (the real one when started with port 0)."""
        server = self._broker._servers.get("default")  # amqtt has no accessor for it
        if server is None:
            return self._port
        sockets = getattr(server.instance, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else self._port

    @property
    def address(self) -> BrokerAddress:
        """How the gateway reaches it (MQTT 3.1.1, no shared subscriptions)."""
        return BrokerAddress(self.host, self.port, version=3)

    async def start(self) -> None:
        await self._broker.start()
        logger.info("embedded MQTT broker listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Shut the broker down and close every client connection.

        amqtt cancels each client's reader task and waits until it has ended. On Python 3.11 a
        reader that is just receiving a packet can miss that cancellation (``asyncio.wait_for``
        returns the packet instead of raising), and the shutdown would wait for ever. So if it
        has not finished after :data:`STOP_GRACE_SECONDS`, the connections still open are
        dropped: their readers see the end of the stream and stop by themselves.
        """
        handlers = self._client_handlers()
        shutdown = asyncio.ensure_future(self._broker.shutdown())
        done, _ = await asyncio.wait({shutdown}, timeout=STOP_GRACE_SECONDS)
        if not done:
            dropped = sum(_drop_connection(h) for h in handlers + self._client_handlers())
            logger.warning(
                "embedded MQTT broker: shutdown stalled; dropped %d client connections", dropped
            )
            done, _ = await asyncio.wait({shutdown}, timeout=STOP_GRACE_SECONDS)
        if not done:
            shutdown.cancel()
            raise RuntimeError("the embedded MQTT broker did not shut down")
        shutdown.result()

    def _client_handlers(self) -> list[Any]:
        # amqtt 0.12 keeps client id -> (session, protocol handler); it has no accessor for it.
        return [handler for _, handler in list(self._broker._sessions.values()) if handler]


def _drop_connection(handler: Any) -> bool:
    """Abort one client's TCP connection (amqtt's stream writer adapter wraps an asyncio
    StreamWriter); True if there was one to abort."""
    stream = getattr(getattr(handler, "writer", None), "_writer", None)
    transport = getattr(stream, "transport", None)
    if transport is None or transport.is_closing():
        return False
    transport.abort()
    return True
