"""A running gateway: the MQTT client, the ingest, command delivery (woken by PostgreSQL
notices from other processes) and the idle sweep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from anju.errors import AnjuError, ConfigurationError
from anju.gateway.broker import EmbeddedBroker
from anju.gateway.client import BrokerAddress, GatewayClient, parse_mqtt_url
from anju.gateway.command_notices import CommandNotices
from anju.gateway.credentials import GATEWAY_USERNAME, gateway_client_id, gateway_password
from anju.gateway.dispatch import CommandDispatcher
from anju.gateway.ingest import Ingest
from anju.gateway.options import GatewayOptions
from anju.kit.aio import wait_any
from anju.platform import Platform

logger = logging.getLogger("anju.gateway")


class Gateway:
    """One gateway process's work; :meth:`start` connects, :meth:`stop` finishes cleanly."""

    def __init__(
        self,
        platform: Platform,
        address: BrokerAddress,
        options: GatewayOptions | None = None,
        *,
        share_group: str = "anju",
        embedded_broker: EmbeddedBroker | None = None,
    ) -> None:
        self.platform = platform
        self.embedded_broker = embedded_broker  # the in-process broker it uses, if any
        self.options = options or GatewayOptions()
        self.ingest = Ingest(platform, self, self.options, on_session=self._on_session)
        self.dispatcher = CommandDispatcher(self.ingest)
        self.notices = CommandNotices(platform.db, self.dispatcher.commands_queued)
        self.client = GatewayClient(
            address,
            client_id=gateway_client_id(self.options.instance),
            share_group=share_group,
            username=GATEWAY_USERNAME,
            password=gateway_password(platform.keys),
            instance=self.options.instance,
            on_message=self.ingest.on_message,
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def counters(self) -> dict[str, int]:
        """The gateway's counters (docs/gateway.md)."""
        return self.ingest.counters.snapshot()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload)

    def _on_session(self, device_id: str) -> None:
        self.dispatcher.wake(device_id)

    async def start(self) -> None:
        """Connect to the broker and start the background loops."""
        self._stop.clear()
        self.ingest.start()
        await self.client.connect()
        orphans = await self.ingest.reset_orphans()
        if orphans:
            logger.warning(
                "gateway instance %04x: reset %d sessions left by a previous process",
                self.options.instance,
                orphans,
            )
        self._tasks = [
            asyncio.create_task(self.dispatcher.run(self._stop), name="anju-gateway-commands"),
            asyncio.create_task(self._sweep(), name="anju-gateway-sweep"),
            asyncio.create_task(self.notices.run(self._stop), name="anju-gateway-notices"),
        ]
        logger.info(
            "gateway instance %04x serving (%s:%d, MQTT %d)",
            self.options.instance,
            self.client.address.host,
            self.client.address.port,
            self.client.address.version,
        )

    async def _sweep(self) -> None:
        while not self._stop.is_set():
            await wait_any(self._stop, within=self.options.sweep_seconds)
            try:
                await self.ingest.sweep()
            except Exception:
                logger.exception("gateway sweep failed; retrying")

    async def abort(self) -> None:
        """Drop the broker connection and stop without storing or releasing anything — what
        ``kill -9`` leaves behind (fault-injection tests)."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await self.ingest.abort()
        with contextlib.suppress(Exception):
            await self.client.disconnect()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        logger.warning("gateway instance %04x aborted", self.options.instance)

    async def stop(self) -> None:
        """Stop taking messages, store what was received, end the loops."""
        self._stop.set()
        with contextlib.suppress(Exception):
            await self.client.disconnect()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.ingest.stop()
        logger.info("gateway instance %04x stopped", self.options.instance)


@contextlib.asynccontextmanager
async def serve_gateway(platform: Platform) -> AsyncIterator[Gateway | None]:
    """The gateway ``anju serve`` runs: on ``ANJU_MQTT_URL`` (external broker, e.g. Mosquitto)
    or on an embedded broker at ``mqtt_host``:``mqtt_port`` (0 disables both)."""
    settings = platform.settings
    broker: EmbeddedBroker | None = None
    if settings.mqtt_url:
        address = parse_mqtt_url(settings.mqtt_url)
    elif settings.mqtt_port == 0:
        logger.info("MQTT gateway disabled (mqtt_port = 0, no mqtt_url)")
        yield None
        return
    else:
        broker = EmbeddedBroker(platform, settings.mqtt_host, settings.mqtt_port)
        try:
            await broker.start()
        except Exception as exc:
            raise ConfigurationError(
                f"内置 MQTT 代理无法监听 / the embedded MQTT broker cannot listen on "
                f"{settings.mqtt_host}:{settings.mqtt_port} ({exc}): set ANJU_MQTT_PORT to a free "
                "port (0 disables it) or ANJU_MQTT_URL to use an existing broker"
            ) from exc
        address = broker.address
    gateway = Gateway(
        platform,
        address,
        GatewayOptions(instance=settings.gateway_instance),
        embedded_broker=broker,
    )
    try:
        try:
            await gateway.start()
        except Exception as exc:
            if isinstance(exc, AnjuError):
                raise
            raise ConfigurationError(
                f"网关无法连接 MQTT 代理 / the gateway cannot reach the MQTT broker at "
                f"{address.host}:{address.port} ({type(exc).__name__}: {exc})"
            ) from exc
        yield gateway
    finally:
        await gateway.stop()
        if broker is not None:
            await broker.stop()
