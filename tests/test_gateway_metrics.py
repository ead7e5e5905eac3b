"""/metrics shows the live gateway counters of the process that serves the API (``anju serve``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from anju.cli.serve import http_app
from anju.gateway.options import GatewayOptions
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.topics import up_topic
from tests.support.gateway_env import embedded_broker, running_gateway, wait_until
from tests.support.mqtt_device import TestDevice, event, manufacture_registered

pytestmark = [pytest.mark.slow, pytest.mark.req("R11", "L17")]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def get_metrics(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return scrape(response.text)


async def test_gateway_counters_and_sessions_are_exported_live(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    instance = (("instance", "7"),)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address, GatewayOptions(instance=7)) as gateway,
    ):
        gateway.embedded_broker = broker  # as serve_gateway does
        transport = httpx.ASGITransport(app=http_app(platform, gateway))
        async with httpx.AsyncClient(transport=transport, base_url="http://anju.test") as client:
            before = await get_metrics(client)
            assert before[("anju_gateway_sessions", instance)] == 0
            assert before[("anju_gateway_handshakes_total", instance)] == 0

            dev = TestDevice(made, platform, broker.address)
            await dev.connect()
            await dev.handshake()
            await wait_until(lambda: made.device_id in gateway.ingest.held_devices())
            dev.send(event("ev-1", at=int(clock.now().timestamp() * 1000)))
            dev.publish(up_topic(made.device_id), b"\x07 not a frame")
            dev.publish(up_topic(made.device_id), b"\x07 not a frame either")
            await wait_until(lambda: gateway.counters.get("rejected.unsupported_version", 0) == 2)
            await gateway.ingest.drain()

            after = await get_metrics(client)
            assert after[("anju_gateway_sessions", instance)] == 1
            assert after[("anju_gateway_handshakes_total", instance)] == 1
            assert after[("anju_gateway_hellos_total", instance)] == 1
            assert after[("anju_gateway_events_stored_total", instance)] == 1
            rejected = (("instance", "7"), ("reason", "unsupported_version"))
            assert after[("anju_gateway_rejected_total", rejected)] == 2
            # Every counter the gateway keeps is exported, under its own name.
            for name, value in gateway.counters.items():
                if not name.startswith("rejected."):
                    assert after[(f"anju_gateway_{name}_total", instance)] == value, name
            assert after[("anju_mqtt_connections_accepted_total", instance)] >= 2  # gw + device
            assert ("anju_gateway_command_listens_total", instance) in after
            # The HTTP metrics are still there, in the same registry.
            assert any(name == "anju_http_requests_total" for name, _ in after)
            await dev.close()


async def test_without_a_gateway_in_the_process_there_are_no_gateway_metrics(
    platform: Platform,
) -> None:
    transport = httpx.ASGITransport(app=http_app(platform, None))
    async with httpx.AsyncClient(transport=transport, base_url="http://anju.test") as client:
        samples = await get_metrics(client)
    assert not [name for name, _ in samples if name.startswith(("anju_gateway", "anju_mqtt"))]
