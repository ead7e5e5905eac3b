"""The reference lock firmware connected to the real gateway through the embedded broker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from anju.device.client import DeviceIdentity
from anju.device.lock import LockFirmware
from anju.devices.ca import ca_public_key
from anju.gateway.client import BrokerAddress
from anju.gateway.runner import Gateway
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.device_harness import fast_options, running
from tests.support.gateway_env import embedded_broker, running_gateway, wait_until


def reference_lock(
    platform: Platform, made: Any, data_dir: Path, clock: FixedClock, broker: BrokerAddress
) -> LockFirmware:
    """The firmware of ``made`` (a manufactured device with its SE), on the test clock."""
    identity = DeviceIdentity(made.device_id, made.certificate, ca_public_key(platform.keys))
    return LockFirmware(
        identity,
        made.se,
        data_dir,
        options=fast_options(host=broker.host, port=broker.port),
        now_ms=lambda: int(clock.now().timestamp() * 1000),
    )


@contextlib.asynccontextmanager
async def lock_online(
    platform: Platform, made: Any, data_dir: Path, clock: FixedClock
) -> AsyncIterator[tuple[LockFirmware, Gateway]]:
    """Broker, gateway and the running lock, once the gateway holds its session."""
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
    ):
        lock = reference_lock(platform, made, data_dir, clock, broker.address)
        async with running(lock):
            await wait_until(lambda: made.device_id in gateway.ingest.held_devices(), 15.0)
            yield lock, gateway
