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
from collections.abc import AsyncIterator, Iterator

from anju.accounts.service import AccountService
from anju.cli.devices import manufacture_into
from anju.consent.service import ConsentService
from anju.demo.notices import DEMO_NOTICES
from anju.demo.world import REGION_CODE, SITE_ADDRESS, reporting_to
from anju.device.client import ClientOptions
from anju.device.sim import Simulator, load_factory
from anju.devices.service import DeviceService, Place, run_device_boundary
from anju.platform import Platform
from anju.properties.service import PropertyService
from anju.reporting.fake_regulator import FakeRegulator
from anju.reporting.wire import REPORT_SIGNER

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
    await _furnish(platform, org_id, [entry["device_id"] for entry in entries])
    logger.info("demo building ready: %d locks in %s", count, DEMO_ORGANISATION)


async def _furnish(platform: Platform, org_id: str, locks: list[str]) -> None:
    """The building's property tree with each lock bound to its room, and the notices a hotel
    shows its guests, so the API has something real to show."""
    actor = "system:demo"
    async with platform.db.transaction() as session:
        svc = PropertyService(platform, session)
        site = await svc.create_site(
            actor,
            org_id,
            kind="apartment",
            name="安居示例公寓",
            region_code=REGION_CODE,
            address=SITE_ADDRESS,
        )
        building = await svc.create_building(actor, org_id, site.id, "1号楼")
        floors = (len(locks) + ROOMS_PER_FLOOR - 1) // ROOMS_PER_FLOOR
        unit = await svc.create_unit(actor, org_id, building.id, "1单元", floors=floors)
        for index, device_id in enumerate(locks):
            room = await svc.create_room(
                actor, org_id, unit.id, number=room_of(index), floor=index // ROOMS_PER_FLOOR + 1
            )
            await svc.bind_lock(actor, org_id, room.id, device_id)
        consent = ConsentService(platform, session)
        for notice in DEMO_NOTICES:
            await consent.publish(org_id, actor, notice)


@contextlib.contextmanager
def demo_regulator(platform: Platform, count: int) -> Iterator[Platform]:
    """With the demo building and no regulator configured: a fake regulator on loopback that
    receives (opens, verifies, keeps) the platform's reports; the platform sending to it."""
    if count <= 0 or platform.settings.regulator_enabled:
        yield platform
        return
    regulator = FakeRegulator(platform.keys.signer(REPORT_SIGNER).public_key)
    regulator.start()
    try:
        key_file = platform.settings.data_dir / "demo" / "regulator.pem"
        key_file.parent.mkdir(parents=True, exist_ok=True)
        yield reporting_to(platform, regulator, key_file)
    finally:
        regulator.stop()


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
