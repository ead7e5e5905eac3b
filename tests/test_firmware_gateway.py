"""The gateway's firmware transfer, seen from a device on the wire: chunks only of packages offered
to it, exact bytes, rate limiting, fw_state applied in order, cancel stops serving."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from anju.firmware.service import FirmwareService, RolloutSpec
from anju.gateway.client import BrokerAddress
from anju.gateway.firmware import FirmwareOptions
from anju.gateway.options import GatewayOptions
from anju.gateway.runner import Gateway
from anju.platform import Platform
from anju.protocol.firmware import CHUNK_BYTES, Offer, chunk_of
from tests.support.firmware import (
    device_states,
    firmware,
    image_bytes,
    platform_package,
    poll,
    upload,
)
from tests.support.gateway_env import embedded_broker, running_gateway, wait_until
from tests.support.mqtt_device import Made, TestDevice, manufacture_registered

pytestmark = pytest.mark.req("R11", "L16", "R19")

IMAGE = image_bytes(2 * CHUNK_BYTES + 10)  # three chunks


async def connected(
    made: Made, platform: Platform, gateway: Gateway, address: BrokerAddress
) -> TestDevice:
    """A device with a session the gateway has recorded (it can be offered firmware now)."""
    device = TestDevice(made, platform, address)
    await device.connect()
    await device.handshake()
    await wait_until(lambda: made.device_id in gateway.ingest.held_devices(), 15)
    return device


async def next_of(device: TestDevice, kind: str) -> dict[str, Any]:
    """The next downlink message of type ``kind`` (others, e.g. a state-report command, skipped)."""
    while True:
        message = await device.receive()
        if message["t"] == kind:
            return message


async def get(device: TestDevice, package_id: str, index: int) -> dict[str, Any]:
    device.send({"t": "fw_get", "pkg": package_id, "i": index})
    return await next_of(device, "fw_chunk")


async def test_chunks_are_served_only_for_an_offered_package(
    platform: Platform, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    package_id = await upload(platform, platform_package(platform, IMAGE, "0.2.0"))
    options = GatewayOptions(firmware=FirmwareOptions(offer_cache_seconds=0))
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address, options) as gateway,
    ):
        device = await connected(made, platform, gateway, broker.address)
        refused = await get(device, package_id, 0)
        assert (refused["data"], refused["code"]) == (None, "fw_not_offered")

        async def start(svc: FirmwareService) -> str:
            device_row = await svc.repo.devices([made.device_id])
            rollout = await svc.create_rollout(
                "cli", device_row[0].org_id, RolloutSpec(package_id, stages=(100,))
            )
            await svc.act("cli", None, rollout.id, "start")
            return rollout.id

        rollout_id = await firmware(platform, start)
        offer = await next_of(device, "cmd")
        assert offer["name"] == "ota.update"
        assert Offer.from_args(offer["args"]).package_id == package_id
        device.send({"t": "ack", "id": offer["id"], "ok": True, "code": None})
        device.send({"t": "fw_state", "pkg": package_id, "state": "downloading", "code": None})
        received = b""
        for index in range(3):
            chunk = await get(device, package_id, index)
            assert (chunk["pkg"], chunk["i"], chunk["code"]) == (package_id, index, None)
            data = base64.b64decode(chunk["data"])
            assert data == chunk_of(IMAGE, index)
            received += data
        assert received == IMAGE
        beyond = await get(device, package_id, 3)
        assert beyond["code"] == "fw_not_offered"
        for state in ("verified", "updating", "updated"):
            device.send({"t": "fw_state", "pkg": package_id, "state": state, "code": None})

        async def updated(_: object) -> bool:
            return (await device_states(platform, rollout_id))[made.device_id][1] == "updated"

        await poll(platform, updated)
        # Finished: no more chunks for this device.
        assert (await get(device, package_id, 0))["code"] == "fw_not_offered"
        assert gateway.counters["fw_chunks_sent"] == 3
        assert gateway.counters["fw_reports"] == 4
        await device.close()


async def test_fw_get_is_rate_limited_per_device_and_cancel_stops_serving(
    platform: Platform, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    package_id = await upload(platform, platform_package(platform, IMAGE, "0.2.0"))
    options = GatewayOptions(
        firmware=FirmwareOptions(chunks_per_second=0.01, burst=2, offer_cache_seconds=0)
    )

    async def start(svc: FirmwareService) -> str:
        (device_row,) = await svc.repo.devices([made.device_id])
        rollout = await svc.create_rollout(
            "cli", device_row.org_id, RolloutSpec(package_id, stages=(100,))
        )
        await svc.act("cli", None, rollout.id, "start")
        return rollout.id

    rollout_id = await firmware(platform, start)
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address, options) as gateway,
    ):
        device = await connected(made, platform, gateway, broker.address)
        for index in range(5):
            device.send({"t": "fw_get", "pkg": package_id, "i": index % 3})
        answers = [await next_of(device, "fw_chunk") for _ in range(2)]
        assert [a["code"] for a in answers] == [None, None]
        await wait_until(lambda: gateway.ingest.counters.rejected["fw_rate_limited"] == 3)
        assert gateway.counters["fw_chunks_sent"] == 2

        async def cancel(svc: FirmwareService) -> None:
            await svc.act("cli", None, rollout_id, "cancel")

        await firmware(platform, cancel)
        gateway.ingest.firmware.forget(made.device_id)  # a fresh bucket: only the offer matters
        assert (await get(device, package_id, 0))["code"] == "fw_not_offered"
        await device.close()
