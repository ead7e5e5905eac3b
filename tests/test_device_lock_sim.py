"""``anju sim``'s engine: factory file loading and many locks in one process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from anju.device.sim import FACTORY_FORMAT, Simulator, load_factory
from anju.errors import InvalidInput
from tests.support.device_harness import fast_options, gateway, wait_until
from tests.support.fake_gateway import SE_PIN, MadeDevice, Pki, make_device, require_mosquitto

pytestmark = [pytest.mark.req("R2", "L13", "L16", "R18", "R19")]


def write_factory(path: Path, pki: Pki, devices: list[MadeDevice]) -> None:
    """The file `anju devices manufacture` writes (relative SE directories allowed)."""
    entries = [
        {
            "device_id": d.device_id,
            "se_id": d.se.se_id,
            "se_dir": str((d.path / "se").relative_to(path.parent)),
            "se_pin": SE_PIN.decode(),
            "certificate": d.identity.certificate.encode().hex(),
            "ca_public_key_pem": pki.ca_key.public_key.to_pem(),
        }
        for d in devices
    ]
    path.write_text(json.dumps({"format": FACTORY_FORMAT, "devices": entries}))


async def test_simulator_runs_many_locks_against_the_platform(tmp_path: Path) -> None:
    require_mosquitto()
    pki = Pki()
    devices = [make_device(pki, tmp_path / f"dev{i}") for i in range(5)]
    for made in devices:
        made.se.logout()  # the simulator opens each SE with its PIN, like a firmware
    factory = tmp_path / "batch.json"
    write_factory(factory, pki, devices)
    loaded = load_factory(factory)
    assert [d.device_id for d in loaded] == [d.device_id for d in devices]

    simulator = Simulator(
        loaded, tmp_path / "sim-data", options=fast_options(), event_interval_s=0.2
    )
    async with gateway(pki, *devices) as fake:
        task = asyncio.create_task(simulator.run(duration_s=30, tick_s=0.1))
        await wait_until(lambda: simulator.summary().connected == 5)
        await fake.wait_for(lambda: fake.confirmed == 5)
        command_id = fake.send_cmd(devices[0].device_id, "ping")
        await wait_until(lambda: simulator.summary().events_sent >= 10)
        await fake.wait_for(
            lambda: any(a["id"] == command_id for a in fake.of_type(devices[0].device_id, "ack"))
        )
        simulator.stop()
        summary = await asyncio.wait_for(task, 15)
    assert summary.devices == 5
    assert summary.commands_executed == 1
    received = sum(len(fake.of_type(d.device_id, "evt")) for d in devices)
    assert received >= summary.events_sent >= 10
    assert "events sent" in summary.line()


def test_factory_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"format": "something-else", "devices": []}))
    with pytest.raises(InvalidInput):
        load_factory(path)
    path.write_text(json.dumps({"format": FACTORY_FORMAT, "devices": [{"device_id": "x"}]}))
    with pytest.raises(InvalidInput):
        load_factory(path)
