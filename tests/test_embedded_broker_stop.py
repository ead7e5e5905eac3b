"""The embedded broker stops even when a client's reader task misses its cancellation.

amqtt's shutdown cancels every client's reader and waits for it. On Python 3.11,
``asyncio.wait_for`` returns the awaited result instead of raising when a cancellation arrives
together with it (a packet from the client, at that instant), so the reader runs on and the
shutdown — of `anju serve`, of every test using the embedded broker — waited for ever. The fault
tests hit it about once in six broker restarts. Here the race is made certain for the broker's
readers, so the outcome does not depend on timing.
"""

from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import Any

import amqtt.mqtt.protocol.handler as amqtt_handler
import pytest

from anju.gateway.broker import STOP_GRACE_SECONDS, EmbeddedBroker
from anju.platform import Platform
from tests.support.gateway_env import wait_until
from tests.support.mqtt_device import TestDevice, manufacture_registered

pytestmark = pytest.mark.req("R11", "R2")


async def wait_for_that_misses_cancellations(
    awaitable: Any,
    timeout: float | None,  # noqa: ASYNC109 - the signature amqtt calls
) -> Any:
    """``asyncio.wait_for`` as Python 3.11 behaves when a cancellation and the result arrive
    together — every time: the cancellation is lost and the wait goes on until there is one."""
    task = asyncio.ensure_future(awaitable)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                return task.result()


async def test_stop_finishes_when_a_client_reader_misses_its_cancellation(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    broker = EmbeddedBroker(platform, port=0)
    await broker.start()
    device = TestDevice(made, platform, broker.address)
    await device.connect()
    racy = types.SimpleNamespace(**vars(asyncio))
    racy.wait_for = wait_for_that_misses_cancellations
    monkeypatch.setattr(amqtt_handler, "asyncio", racy)
    # A packet from the client: the reader loops round into the racy wait for the next one.
    assert await device.subscribe(f"anju/v1/dev/{made.device_id}/down") == 1
    lost = asyncio.Event()
    device.client.on_disconnect = lambda *_args: lost.set()
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(4 * STOP_GRACE_SECONDS):
        await broker.stop()
    assert asyncio.get_running_loop().time() - started >= STOP_GRACE_SECONDS  # it did stall
    await wait_until(lost.is_set, 10)  # the client saw its connection go
    with pytest.raises(ConnectionRefusedError):  # and nothing listens any more
        await asyncio.open_connection(broker.address.host, broker.address.port)
