"""The simulated building that ``anju serve --demo-building N`` (and so ``make run``) brings up.

On first start it creates an organisation, manufactures N locks (the real factory step: software
secure elements, one device one key, certificates from the device CA), registers them to rooms
and keeps their factory file under ``<data-dir>/demo/``; on every start it runs them with the
reference firmware against the embedded broker, so the gateway, the registry and the audit log
have real traffic to show. Nothing here bypasses the platform: the locks authenticate, hand-
shake and report exactly as real ones would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from anju.accounts.service import AccountService
from anju.cli.devices import manufacture_into
from anju.device.client import ClientOptions
from anju.device.sim import Simulator, load_factory
from anju.devices.service import DeviceService, Place, run_device_boundary
from anju.platform import Platform

logger = logging.getLogger("anju.demo")

DEMO_ORGANISATION = "示例公寓 Demo Building"
DEMO_PRODUCT = "anju-demo-lock"
ROOMS_PER_FLOOR = 10
EVENT_INTERVAL_SECONDS = 30.0


def room_of(index: int) -> str:
    """Room numbers as a building has them: 101…110, 201…"""
    floor, number = divmod(index, ROOMS_PER_FLOOR)
    return f"{floor + 1}{number + 1:02d}"


async def ensure_demo_building(platform: Platform, count: int) -> None:
    """Manufacture and register ``count`` locks once; later starts reuse them."""
    factory = platform.settings.data_dir / "demo" / "factory.json"
    if factory.exists():
        return
    async with platform.db.transaction() as session:
        organisation = await AccountService(platform, session).create_organisation(
            DEMO_ORGANISATION, "property_operator", actor="system"
        )
        org_id = organisation.id
    _, entries = await manufacture_into(platform, DEMO_PRODUCT, count, factory, "lock")
    for index, entry in enumerate(entries):

        async def register(
            svc: DeviceService,
            device_id: str = entry["device_id"],
            place: Place = Place("room", room_of(index)),  # noqa: B008 - bound per iteration
        ) -> None:
            await svc.register_device_as_operator(device_id, org_id, place)

        await run_device_boundary(platform, register, DeviceService)
    logger.info("demo building ready: %d locks in %s", count, DEMO_ORGANISATION)


@contextlib.asynccontextmanager
async def demo_building(platform: Platform, count: int) -> AsyncIterator[Simulator | None]:
    """Run the demo building's locks for the duration of the block (embedded broker only)."""
    settings = platform.settings
    if count <= 0:
        yield None
        return
    if settings.mqtt_url or settings.mqtt_port == 0:
        logger.warning("--demo-building needs the embedded broker (no ANJU_MQTT_URL, port > 0)")
        yield None
        return
    await ensure_demo_building(platform, count)
    root = settings.data_dir / "demo"
    devices = load_factory(root / "factory.json")
    simulator = Simulator(
        devices,
        root / "devices",
        options=ClientOptions(host=settings.mqtt_host, port=settings.mqtt_port),
        event_interval_s=EVENT_INTERVAL_SECONDS,
    )
    task = asyncio.create_task(simulator.run())
    try:
        yield simulator
    finally:
        simulator.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
