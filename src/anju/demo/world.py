"""The demo's world: a fresh platform on the configured database, the gateway on the embedded
broker (or ``ANJU_MQTT_URL``), three locks made in the factory step and running the reference
firmware, and the outside services on loopback (network identity service, regulator)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from anju.accounts.service import AccountService
from anju.cli.devices import manufacture_into
from anju.device.access.phone import PhoneWallet
from anju.device.client import ClientOptions
from anju.device.lock import LockFirmware
from anju.device.secure_element import SoftwareSecureElement
from anju.device.sim import load_factory
from anju.devices.service import DeviceService, Place, run_device_boundary
from anju.errors import ConfigurationError
from anju.gateway.runner import Gateway, serve_gateway
from anju.kit.clock import OffsetClock
from anju.migrations import upgrade
from anju.people.verification.fake_ctid import FakeCtidService
from anju.platform import Platform, open_platform
from anju.settings import Settings

ORGANISATION = "示例酒店 Demo Hotel"
PRODUCT = "anju-demo-lock"
ACTOR = "demo:front-desk"
#: The doors of the demo: two rooms and the building's entrance.
DOORS = (("room", "101"), ("room", "102"), ("building_entrance", "A"))


@dataclass
class DemoLock:
    place: Place
    device_id: str
    firmware: LockFirmware


@dataclass
class DemoWorld:
    platform: Platform
    clock: OffsetClock
    org_id: str
    gateway: Gateway
    ctid: FakeCtidService
    locks: dict[str, DemoLock]  # by place reference
    phones: dict[str, PhoneWallet] = field(default_factory=dict)  # by subject id

    def lock(self, ref: str) -> DemoLock:
        return self.locks[ref]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_settings(settings: Settings) -> Settings:
    """The settings with a free port for the embedded broker unless an external one is set."""
    if settings.mqtt_url:
        return settings
    return settings.model_copy(update={"mqtt_host": "127.0.0.1", "mqtt_port": _free_port()})


def check_fresh(settings: Settings) -> None:
    """The demo writes a new organisation, keys and factory files: only into a new directory."""
    if settings.data_dir.exists() and any(settings.data_dir.iterdir()):
        raise ConfigurationError(
            f"演示需要空的数据目录 / the demo needs a new or empty data directory; "
            f"{settings.data_dir} is not empty"
        )


async def _make_locks(platform: Platform, org_id: str, root: Path) -> list[tuple[Place, str]]:
    """The factory step for three locks, then their registration to the demo's doors."""
    _, entries = await manufacture_into(
        platform, PRODUCT, len(DOORS), root / "factory.json", "lock"
    )
    made = []
    for (kind, ref), entry in zip(DOORS, entries, strict=True):
        place = Place(kind, ref)

        async def register(
            svc: DeviceService, device_id: str = entry["device_id"], at: Place = place
        ) -> None:
            await svc.register_device_as_operator(device_id, org_id, at)

        await run_device_boundary(platform, register, DeviceService)
        made.append((place, entry["device_id"]))
    return made


async def _until(predicate: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise ConfigurationError(f"演示环境未就绪 / the demo's {what} did not come up")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def demo_world(settings: Settings) -> AsyncIterator[DemoWorld]:
    """Everything the journey needs, torn down (data kept) when the block ends."""
    clock = OffsetClock()
    async with open_platform(settings, create_keys=True, clock=clock) as platform:
        await upgrade(platform.db)
        platform.keys.add_missing_named_keys()
        async with platform.db.transaction() as session:
            org = await AccountService(platform, session).create_organisation(
                ORGANISATION, "hotel_group", actor="system:demo"
            )
            org_id = org.id
        root = settings.data_dir / "demo"
        made = await _make_locks(platform, org_id, root)
        factory = {d.device_id: d for d in load_factory(root / "factory.json")}
        ctid = FakeCtidService()
        ctid.start()
        try:
            async with serve_gateway(platform) as gateway:
                if gateway is None:
                    raise ConfigurationError("演示需要 MQTT / the demo needs the MQTT gateway")
                address = gateway.client.address
                options = ClientOptions(host=address.host, port=address.port)
                locks: dict[str, DemoLock] = {}
                for place, device_id in made:
                    device = factory[device_id]
                    se = SoftwareSecureElement.open(device.se_dir)
                    se.verify_pin(device.se_pin.encode("ascii"))
                    firmware = LockFirmware(
                        device.identity,
                        se,
                        root / "devices" / device_id,
                        options=options,
                        now_ms=clock.now_ms,
                    )
                    locks[place.ref] = DemoLock(place, device_id, firmware)
                tasks = [asyncio.create_task(lock.firmware.run()) for lock in locks.values()]
                try:
                    held = set(locks[ref].device_id for ref in locks)
                    await _until(lambda: held <= set(gateway.ingest.held_devices()), 30.0, "locks")
                    yield DemoWorld(platform, clock, org_id, gateway, ctid, locks)
                finally:
                    for lock in locks.values():
                        await lock.firmware.stop()
                    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
        finally:
            ctid.stop()
