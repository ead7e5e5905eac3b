"""Firmware updates end to end: the reference lock against the real gateway on the embedded
broker — a staged rollout installs a new version on real locks, bad offers are refused by the
lock before any download, a tampered image is caught after it, and a download survives a dropped
connection and a power cut. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit.models import AuditEntry
from anju.device.lock import LockFirmware
from anju.device.ota_store import Job
from anju.devices.command_models import DeviceCommand
from anju.devices.commands import CommandService, CommandStatus
from anju.devices.models import Device
from anju.devices.provisioning import ProvisioningService
from anju.firmware.models import FirmwarePackage
from anju.firmware.progress import offer_args
from anju.firmware.service import FirmwareService, RolloutSpec
from anju.kit.crypto import SM2PrivateKey, sm3
from anju.platform import Platform
from anju.protocol.firmware import CHUNK_BYTES, Offer, Package, b64encode
from tests.support.device_harness import running
from tests.support.firmware import (
    device_states,
    firmware,
    image_bytes,
    platform_package,
    poll,
    reference_lock,
    upload,
)
from tests.support.gateway_env import embedded_broker, running_gateway, wait_until
from tests.support.mqtt_device import manufacture_registered

pytestmark = pytest.mark.req("R11", "L13", "L14", "L16", "R18", "R19")

IMAGE = image_bytes(5 * CHUNK_BYTES + 123, b"anju-lock 0.2.0")  # six chunks


async def start_rollout(platform: Platform, org_id: str | None, spec: RolloutSpec) -> str:
    async def work(svc: FirmwareService) -> str:
        rollout = await svc.create_rollout("cli", org_id, spec)
        await svc.act("cli", org_id, rollout.id, "start")
        return rollout.id

    return await firmware(platform, work)


async def org_of(platform: Platform, device_id: str) -> str:
    async with platform.db.transaction() as session:
        device = await session.get(Device, device_id)
        assert device is not None
        assert device.org_id is not None
        return device.org_id


async def firmware_of(platform: Platform, device_id: str) -> str | None:
    async with platform.db.transaction() as session:
        device = await session.get(Device, device_id)
        return device.firmware_version if device is not None else None


async def offer_directly(platform: Platform, device_id: str, args: dict[str, Any]) -> str:
    """Queue an ``ota.update`` the platform's rollouts would never send (a forged or unfit
    offer, as an attacker or a bug might): the lock must refuse it on its own."""
    async with platform.db.transaction() as session:
        command = await CommandService(platform, session).enqueue(
            "cli", None, device_id, "ota.update", args, 600
        )
        return command.id


async def command(platform: Platform, command_id: str) -> DeviceCommand:
    async with platform.db.transaction() as session:
        row = await session.get(DeviceCommand, command_id)
        assert row is not None
        return row


async def package_row(platform: Platform, package_id: str) -> FirmwarePackage:
    async with platform.db.transaction() as session:
        row = await session.get(FirmwarePackage, package_id)
        assert row is not None
        return row


async def test_a_staged_rollout_updates_real_locks_through_the_gateway(
    platform: Platform, tmp_path: Path
) -> None:
    made = await manufacture_registered(platform, tmp_path, count=2)
    org_id = await org_of(platform, made[0].device_id)
    package_id = await upload(platform, platform_package(platform, IMAGE, "0.2.0"))
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
    ):
        locks = [
            reference_lock(m, platform, broker.address, tmp_path / f"lock-{i}")
            for i, m in enumerate(made)
        ]
        async with running(locks[0]), running(locks[1]):
            for m in made:
                await wait_until(lambda m=m: m.device_id in gateway.ingest.held_devices(), 15)

            async def reported(session: AsyncSession) -> bool:
                rows = await session.execute(select(Device.firmware_version))
                return set(rows.scalars()) == {"anju-lock/0.1.0"}

            await poll(platform, reported)
            # Two stages of one lock each: the second is offered once the first updated.
            rollout_id = await start_rollout(
                platform, org_id, RolloutSpec(package_id, stages=(50, 100))
            )

            async def everyone_updated(session: AsyncSession) -> bool:
                rows = await session.execute(select(Device.firmware_version))
                return set(rows.scalars()) == {"anju-lock/0.2.0"}

            await poll(platform, everyone_updated, within=60)
            for lock in locks:
                assert lock.ota.running_version == "0.2.0"
                assert lock.firmware == "anju-lock/0.2.0"
                active = lock.ota.store.active()
                assert active is not None
                assert (active.version, active.sm3) == ("0.2.0", sm3(IMAGE))
                assert lock.ota.job is None  # finished and forgotten
            assert gateway.counters["fw_chunks_sent"] >= 2 * 6

    states = await device_states(platform, rollout_id)
    assert sorted(s[:2] for s in states.values()) == [(1, "updated"), (2, "updated")]

    async def work(svc: FirmwareService) -> str:
        return (await svc.summary(None, rollout_id)).rollout.status

    assert await firmware(platform, work) == "completed"
    async with platform.db.transaction() as session:
        rows = await session.execute(
            select(AuditEntry.actor).where(AuditEntry.action == "firmware.device.updated")
        )
        assert sorted(rows.scalars()) == sorted(f"device:{m.device_id}" for m in made)


async def test_the_lock_refuses_bad_offers_before_downloading_and_keeps_its_version(
    platform: Platform, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    good = platform_package(platform, IMAGE, "0.2.0")
    async with platform.db.transaction() as session:
        await ProvisioningService(platform, session).product_for_manufacture("lock-y2", "lock")
    other_product = await package_row(
        platform,
        await upload(platform, platform_package(platform, IMAGE, "0.3.0", product="lock-y2")),
    )
    older = await package_row(
        platform, await upload(platform, platform_package(platform, IMAGE, "0.0.9"))
    )
    stranger = SM2PrivateKey.generate()
    forged_signature = {
        **good_args(good, "p-forged"),
        "sig": b64encode(stranger.sign(b"anju/firmware/v1" + good.signed.manifest_bytes)),
    }
    tampered_manifest = {
        **good_args(good, "p-tampered"),
        "manifest": b64encode(good.signed.manifest_bytes.replace(b'"0.2.0"', b'"0.2.1"')),
    }
    cases = [
        ("fw_bad_signature", forged_signature),
        ("fw_bad_signature", tampered_manifest),
        ("fw_wrong_product", offer_args(other_product)),
        ("fw_downgrade", offer_args(older)),
    ]
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
    ):
        lock = reference_lock(made, platform, broker.address, tmp_path / "lock")
        async with running(lock):
            await wait_until(lambda: made.device_id in gateway.ingest.held_devices(), 15)
            for expected, args in cases:
                command_id = await offer_directly(platform, made.device_id, args)

                async def answered(session: AsyncSession, command_id: str = command_id) -> bool:
                    row = await session.get(DeviceCommand, command_id)
                    return (
                        row is not None
                        and row.status != CommandStatus.QUEUED
                        and row.acked_at is not None
                    )

                await poll(platform, answered)
                row = await command(platform, command_id)
                assert (row.status, row.result_code) == (CommandStatus.FAILED, expected)
            assert lock.ota.running_version == "0.1.0"
            assert lock.ota.job is None
            assert lock.ota.chunks_received == 0  # nothing was downloaded
            assert gateway.counters["fw_chunks_sent"] == 0
            assert gateway.counters["fw_reports"] >= len(cases)  # fw_state failed, each
    assert await firmware_of(platform, made.device_id) == "anju-lock/0.1.0"


async def test_a_tampered_image_is_caught_after_download_and_not_installed(
    platform: Platform, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    org_id = await org_of(platform, made.device_id)
    package_id = await upload(platform, platform_package(platform, IMAGE, "0.2.0"))
    # The platform's copy is altered after upload (a damaged disk, an insider): the lock still
    # has the signed manifest and refuses what does not match it.
    altered = bytearray(IMAGE)
    altered[CHUNK_BYTES + 7] ^= 0x01
    async with platform.db.transaction() as session:
        await session.execute(
            update(FirmwarePackage)
            .where(FirmwarePackage.id == package_id)
            .values(image=bytes(altered))
        )
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
    ):
        lock = reference_lock(made, platform, broker.address, tmp_path / "lock")
        async with running(lock):
            await wait_until(lambda: made.device_id in gateway.ingest.held_devices(), 15)
            rollout_id = await start_rollout(
                platform, org_id, RolloutSpec(package_id, stages=(100,), failure_threshold_pct=100)
            )

            async def failed(session: AsyncSession) -> bool:
                states = await device_states(platform, rollout_id)
                return states[made.device_id][1] == "failed"

            await poll(platform, failed, within=30)
            assert (await device_states(platform, rollout_id))[made.device_id][2] == (
                "fw_digest_mismatch"
            )
            await wait_until(lambda: lock.ota.job is None)
            assert lock.ota.running_version == "0.1.0"
            assert lock.ota.store.active() is None  # still the factory image
            assert not (tmp_path / "lock" / "ota" / "staging").exists()  # staged bytes dropped
    assert await firmware_of(platform, made.device_id) == "anju-lock/0.1.0"


async def test_a_download_resumes_after_a_dropped_connection_and_a_power_cut(
    platform: Platform, tmp_path: Path
) -> None:
    (made,) = await manufacture_registered(platform, tmp_path)
    org_id = await org_of(platform, made.device_id)
    image = image_bytes(12 * CHUNK_BYTES, b"anju-lock 0.3.0")
    package_id = await upload(platform, platform_package(platform, image, "0.3.0"))
    data_dir = tmp_path / "lock"
    async with (
        embedded_broker(platform) as broker,
        running_gateway(platform, broker.address) as gateway,
    ):
        first = reference_lock(made, platform, broker.address, data_dir)
        fetched: list[int] = []
        switched_off = _after_chunks(first, fetched, drop_at=3, stop_at=7)
        async with running(first):
            await wait_until(lambda: made.device_id in gateway.ingest.held_devices(), 15)
            await start_rollout(platform, org_id, RolloutSpec(package_id, stages=(100,)))
            await wait_until(switched_off.is_set, 30)
        job = first.ota.store.read_job()
        assert job is not None
        assert job.report is None
        assert job.received == 7  # switched off mid-download, 7 chunks on flash
        assert first.client.stats.sessions >= 2  # it reconnected after the drop and went on
        assert fetched == list(range(7))  # each chunk once: the drop lost nothing

        # Power back: a new firmware process on the same flash resumes where it stopped.
        second = reference_lock(made, platform, broker.address, data_dir)
        later: list[int] = []
        _after_chunks(second, later)
        async with running(second):
            await wait_until(lambda: second.ota.running_version == "0.3.0", 30)

            async def updated(session: AsyncSession) -> bool:
                device = await session.get(Device, made.device_id)
                return device is not None and device.firmware_version == "anju-lock/0.3.0"

            await poll(platform, updated)
        assert later == list(range(7, 12))  # not from the start
        assert second.ota.store.active() is not None


def _after_chunks(
    lock: LockFirmware, seen: list[int], *, drop_at: int | None = None, stop_at: int | None = None
) -> asyncio.Event:
    """Record each chunk the lock stores; drop its connection after ``drop_at`` chunks, and
    switch it off after ``stop_at`` (the returned event is set then)."""
    store = lock.ota.store
    original = store.put_chunk
    switched_off = asyncio.Event()
    stopping: list[asyncio.Task[None]] = []

    def put_chunk(job: Job, index: int, data: bytes) -> None:
        original(job, index, data)
        seen.append(index)
        if len(seen) in (drop_at, stop_at):
            lock.client.drop_connection()
        if len(seen) == stop_at:
            stopping.append(asyncio.create_task(lock.stop()))  # before it reconnects
            switched_off.set()

    store.put_chunk = put_chunk  # type: ignore[method-assign]
    return switched_off


def good_args(package: Package, package_id: str) -> dict[str, Any]:
    """``ota.update`` arguments of a correctly signed package under ``package_id``."""
    return Offer(package_id, package.signed).to_args()
