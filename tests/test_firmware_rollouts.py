"""Firmware packages and staged rollouts on the platform: upload verification, device choice,
stages through the command outbox, device reports, automatic pause, resume, cancel — on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import select

from anju.audit.models import AuditEntry
from anju.devices.command_models import DeviceCommand
from anju.devices.commands import CommandService, CommandStatus
from anju.devices.models import DeviceOperation
from anju.errors import AnjuError
from anju.firmware.models import FirmwarePackage
from anju.firmware.progress import RolloutProgress
from anju.firmware.service import FirmwareService, RolloutSpec
from anju.kit.clock import FixedClock
from anju.platform import Platform
from anju.protocol.certificates import CertKind, issue_certificate
from anju.protocol.firmware import Offer
from tests.support.firmware import (
    device_states,
    firmware,
    image_bytes,
    offline_signer,
    platform_package,
    registered_fleet,
    upload,
)

pytestmark = pytest.mark.req("R11", "L16", "L17", "R19")

IMAGE = image_bytes(20_000)


async def refusal(platform: Platform, data: bytes) -> str:
    async def work(svc: FirmwareService) -> None:
        await svc.upload("cli", data)

    with pytest.raises(AnjuError) as exc:
        await firmware(platform, work)
    assert exc.value.code == "firmware_refused"
    return str(exc.value.details["reason"])


async def audit(platform: Platform, action: str) -> list[AuditEntry]:
    async with platform.db.transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == action)
        return list((await session.execute(query.order_by(AuditEntry.leaf_index))).scalars())


async def package_count(platform: Platform) -> int:
    async with platform.db.transaction() as session:
        return len((await session.execute(select(FirmwarePackage.id))).all())


async def create(platform: Platform, org_id: str | None, spec: RolloutSpec) -> str:
    async def work(svc: FirmwareService) -> str:
        return (await svc.create_rollout("cli", org_id, spec)).id

    return await firmware(platform, work)


async def act(platform: Platform, rollout_id: str, action: str) -> str:
    async def work(svc: FirmwareService) -> str:
        return (await svc.act("cli", None, rollout_id, action)).status

    return await firmware(platform, work)


async def status(platform: Platform, rollout_id: str) -> tuple[str, int, str | None]:
    async def work(svc: FirmwareService) -> tuple[str, int, str | None]:
        r = (await svc.summary(None, rollout_id)).rollout
        return r.status, r.current_stage, r.paused_reason

    return await firmware(platform, work)


async def report(
    platform: Platform, device_id: str, package_id: str, state: str, code: str | None = None
) -> bool:
    async with platform.db.transaction() as session:
        return await RolloutProgress(platform, session).record_report(
            device_id, package_id, state, code
        )


async def report_all(platform: Platform, device_ids: list[str], package_id: str) -> None:
    for device_id in device_ids:
        for state in ("downloading", "verified", "updating", "updated"):
            assert await report(platform, device_id, package_id, state)


async def commands(platform: Platform, device_id: str) -> list[DeviceCommand]:
    async with platform.db.transaction() as session:
        query = select(DeviceCommand).where(DeviceCommand.device_id == device_id)
        return list((await session.execute(query.order_by(DeviceCommand.seq))).scalars())


async def commands_of(platform: Platform, device_ids: list[str]) -> list[DeviceCommand]:
    found = []
    for device_id in device_ids:
        found += await commands(platform, device_id)
    return found


def in_state(states: dict[str, tuple[int, str, str | None]], state: str) -> list[str]:
    return sorted(d for d, (_, s, _) in states.items() if s == state)


# --- packages ------------------------------------------------------------------------------------
async def test_upload_stores_a_verified_package_once(platform: Platform) -> None:
    await registered_fleet(platform, 1)
    package = platform_package(platform, IMAGE, "1.0.0")
    package_id = await upload(platform, package)

    async def read(svc: FirmwareService) -> tuple[FirmwarePackage, bytes | None]:
        return await svc.package(None, package_id), await svc.repo.image(package_id)

    row, image = await firmware(platform, read)
    assert (row.product_key, row.version, row.size, row.sm3) == (
        "lock-x1",
        "1.0.0",
        len(IMAGE),
        package.manifest.sm3.hex(),
    )
    assert image == IMAGE
    assert row.manifest == package.signed.manifest_bytes  # re-sent to devices as signed
    # "1.0" is the same version as "1.0.0": one package per version of a product.
    with pytest.raises(AnjuError) as exc:
        await upload(platform, platform_package(platform, image_bytes(10, b"x"), "1.0"))
    assert exc.value.code == "package_exists"
    (entry,) = await audit(platform, "firmware.package.uploaded")
    assert entry.outcome == "success"
    assert json.loads(entry.details)["version"] == "1.0.0"


async def test_tampered_unsigned_and_foreign_packages_are_refused_and_audited(
    platform: Platform,
) -> None:
    await registered_fleet(platform, 1)
    good = platform_package(platform, IMAGE, "1.0.0").encode()
    tampered_image = bytearray(good)
    tampered_image[-5] ^= 0x40
    tampered_manifest = good.replace(b'"version":"1.0.0"', b'"version":"7.0.0"')
    now = int(platform.clock.now().timestamp())
    stranger_key, _ = offline_signer(platform)
    self_signed = issue_certificate(  # a "firmware CA" of its own making: not our device CA
        stranger_key,
        kind=CertKind.FIRMWARE,
        subject="evil.example",
        se_id="",
        product="anju-firmware",
        public_key=stranger_key.public_key,
        not_before=now - 10,
        not_after=now + 10_000,
    )
    foreign = platform_package(
        platform, IMAGE, "1.0.1", signer=stranger_key, certificate=self_signed
    ).encode()
    vendor_key, vendor_cert = offline_signer(platform)
    expired_cert = issue_certificate(
        platform.keys.signer("device-ca"),
        kind=CertKind.FIRMWARE,
        subject="old.example",
        se_id="",
        product="anju-firmware",
        public_key=vendor_key.public_key,
        not_before=now - 1000,
        not_after=now - 1,
    )
    expired = platform_package(
        platform, IMAGE, "1.0.2", signer=vendor_key, certificate=expired_cert
    ).encode()
    unknown_product = platform_package(platform, IMAGE, "1.0.3", product="fridge-9").encode()
    cases = {
        "tampered image": (bytes(tampered_image), "fw_digest_mismatch"),
        "tampered manifest": (tampered_manifest, "fw_bad_signature"),
        "foreign signer": (foreign, "fw_bad_signer"),
        "expired signer": (expired, "fw_signer_expired"),
        "unknown product": (unknown_product, "fw_wrong_product"),
        "garbage": (b"AFW1" + bytes(100), "fw_malformed"),
    }
    for name, (data, reason) in cases.items():
        assert await refusal(platform, data) == reason, name
    assert await package_count(platform) == 0
    denied = await audit(platform, "firmware.package.uploaded")
    assert [e.outcome for e in denied] == ["denied"] * len(cases)
    assert [json.loads(e.details)["reason"] for e in denied] == [r for _, r in cases.values()]
    # An offline vendor key certified by our CA (for this product) is accepted.
    vendor = platform_package(platform, IMAGE, "1.1.0", signer=vendor_key, certificate=vendor_cert)
    await upload(platform, vendor)
    assert await package_count(platform) == 1


# --- rollouts ------------------------------------------------------------------------------------
async def test_devices_are_chosen_split_into_stages_and_offered_through_the_outbox(
    platform: Platform,
) -> None:
    org, fleet = await registered_fleet(platform, 20)
    _, newer = await registered_fleet(platform, 2, org_id=org, firmware="anju-lock/2.0.0")
    _, other_org = await registered_fleet(platform, 2)
    _, other_product = await registered_fleet(platform, 1, org_id=org, product="lock-y2")
    package_id = await upload(platform, platform_package(platform, IMAGE, "1.1.0"))
    rollout_id = await create(platform, org, RolloutSpec(package_id, stages=(10, 50, 100)))
    states = await device_states(platform, rollout_id)
    assert sorted(states) == sorted(fleet)  # not the newer, other org's or other product's ones
    assert not set(states) & set(newer + other_org + other_product)
    assert Counter(stage for stage, _, _ in states.values()) == {1: 2, 2: 8, 3: 10}
    assert set(in_state(states, "pending")) == set(fleet)
    assert (await status(platform, rollout_id))[:2] == ("draft", 0)
    assert await commands_of(platform, fleet) == []  # nothing sent in draft

    assert await act(platform, rollout_id, "start") == "running"
    states = await device_states(platform, rollout_id)
    first = sorted(d for d, (stage, _, _) in states.items() if stage == 1)
    assert in_state(states, "sent") == first
    (command,) = await commands(platform, first[0])
    assert command.name == "ota.update"
    assert command.status == CommandStatus.QUEUED
    offer = Offer.from_args(json.loads(command.args))
    assert offer.package_id == package_id
    ca = platform.keys.signer("device-ca").public_key
    manifest = offer.signed.verify(ca, now=int(platform.clock.now().timestamp()))
    assert (manifest.version, manifest.size) == ("1.1.0", len(IMAGE))
    assert await commands_of(platform, [d for d in fleet if d not in first]) == []

    # One rollout at a time per device: the busy ones are left out of a second rollout.
    other_pkg = await upload(platform, platform_package(platform, image_bytes(99), "3.0.0"))
    second = await create(platform, org, RolloutSpec(other_pkg, stages=(100,)))
    assert sorted(await device_states(platform, second)) == sorted(newer)
    with pytest.raises(AnjuError) as exc:
        await create(platform, org, RolloutSpec(other_pkg, device_ids=(fleet[0],)))
    assert (exc.value.code, exc.value.details["reason"]) == ("invalid_input", "busy")
    with pytest.raises(AnjuError) as exc:
        await create(platform, org, RolloutSpec(package_id, device_ids=(other_org[0],)))
    assert exc.value.details["reason"] == "not_found"  # another organisation's device


async def test_stages_advance_on_success_and_the_device_record_keeps_the_outcome(
    platform: Platform,
) -> None:
    org, fleet = await registered_fleet(platform, 4)
    package_id = await upload(platform, platform_package(platform, IMAGE, "1.1.0"))
    rollout_id = await create(
        platform, org, RolloutSpec(package_id, stages=(25, 100), success_threshold_pct=100)
    )
    await act(platform, rollout_id, "start")
    (canary,) = in_state(await device_states(platform, rollout_id), "sent")
    rest = sorted(set(fleet) - {canary})

    assert await report(platform, canary, package_id, "downloading")
    assert await report(platform, canary, package_id, "verified")
    assert not await report(platform, rest[0], package_id, "downloading")  # not offered yet
    assert (await device_states(platform, rollout_id))[canary][1] == "verified"
    assert await report(platform, canary, package_id, "downloading")  # late: no step back
    assert (await device_states(platform, rollout_id))[canary][1] == "verified"
    assert await status(platform, rollout_id) == ("running", 1, None)
    assert await report(platform, canary, package_id, "updating")
    assert await report(platform, canary, package_id, "updated")

    # The canary succeeded: the next stage was offered in the same transaction.
    states = await device_states(platform, rollout_id)
    assert states[canary][1] == "updated"
    assert in_state(states, "sent") == rest
    assert await status(platform, rollout_id) == ("running", 2, None)
    assert not await report(platform, canary, package_id, "updated")  # finished: ignored
    await report_all(platform, rest, package_id)
    assert await status(platform, rollout_id) == ("completed", 2, None)
    assert [
        json.loads(e.details)["stage"]
        for e in await audit(platform, "firmware.rollout.stage_started")
    ] == [1, 2]
    assert len(await audit(platform, "firmware.device.updated")) == 4
    assert len(await audit(platform, "firmware.rollout.completed")) == 1
    async with platform.db.transaction() as session:
        ops = await session.execute(
            select(DeviceOperation.operation).where(DeviceOperation.device_id == canary)
        )
        assert "firmware.updated" in set(ops.scalars())


async def test_failures_pause_the_rollout_and_withdraw_undelivered_offers(
    platform: Platform, clock: FixedClock
) -> None:
    org, _ = await registered_fleet(platform, 10)
    package_id = await upload(platform, platform_package(platform, IMAGE, "1.1.0"))
    rollout_id = await create(
        platform,
        org,
        RolloutSpec(
            package_id, stages=(20, 60, 100), success_threshold_pct=100, failure_threshold_pct=20
        ),
    )
    await act(platform, rollout_id, "start")
    first = in_state(await device_states(platform, rollout_id), "sent")
    assert len(first) == 2
    await report_all(platform, first, package_id)
    second = in_state(await device_states(platform, rollout_id), "sent")
    assert len(second) == 4
    # One device of stage 2 took its offer; the others are still queued (offline).
    async with platform.db.transaction() as session:
        delivered = (await commands(platform, second[0]))[0].id
        await CommandService(platform, session).mark_sent([delivered])
    assert await report(platform, second[0], package_id, "downloading")
    # 3 failures among the 6 started devices: over 20 % → paused by itself.
    assert await report(platform, second[1], package_id, "failed", "fw_digest_mismatch")
    assert await status(platform, rollout_id) == ("running", 2, None)  # 1/6 ≤ 20 %
    assert await report(platform, second[2], package_id, "failed", "fw_storage_failed")
    assert await status(platform, rollout_id) == ("paused", 2, "failure_threshold")
    (paused,) = await audit(platform, "firmware.rollout.paused")
    assert (paused.actor, paused.outcome) == ("system", "failure")
    assert json.loads(paused.details)["reason"] == "failure_threshold"

    states = await device_states(platform, rollout_id)
    assert states[second[1]] == (2, "failed", "fw_digest_mismatch")
    assert states[second[0]][1] == "downloading"  # delivered: it may finish
    assert states[second[3]][1] == "pending"  # never delivered: offer withdrawn
    (withdrawn,) = await commands(platform, second[3])
    assert withdrawn.status == CommandStatus.CANCELLED
    assert await report(platform, second[0], package_id, "updated")  # paused: still recorded
    assert await status(platform, rollout_id) == ("paused", 2, "failure_threshold")

    # The operator resumes: the two failures are accepted, the withdrawn device is offered again.
    assert await act(platform, rollout_id, "resume") == "running"
    states = await device_states(platform, rollout_id)
    assert states[second[3]][1] == "sent"
    await report_all(platform, [second[3]], package_id)
    rest = in_state(await device_states(platform, rollout_id), "sent")
    assert len(rest) == 4  # stage 3 started
    await report_all(platform, rest, package_id)
    assert await status(platform, rollout_id) == ("completed", 3, None)
    final = await device_states(platform, rollout_id)
    assert Counter(s for _, s, _ in final.values()) == {"updated": 8, "failed": 2}


async def test_commands_that_end_without_a_report_fail_the_device(
    platform: Platform, clock: FixedClock
) -> None:
    org, fleet = await registered_fleet(platform, 2)
    package_id = await upload(platform, platform_package(platform, IMAGE, "1.1.0"))
    rollout_id = await create(
        platform, org, RolloutSpec(package_id, stages=(100,), failure_threshold_pct=100)
    )
    await act(platform, rollout_id, "start")
    old, silent = fleet
    # An old firmware that does not know the command refuses it; the other never connects.
    async with platform.db.transaction() as session:
        svc = CommandService(platform, session)
        command = (await commands(platform, old))[0]
        await svc.mark_sent([command.id])
        await svc.record_ack(old, command.id, False, "unknown_command")
    clock.advance(seconds=3 * 86_400 + 1)  # past the offer's TTL
    async with platform.db.transaction() as session:
        await CommandService(platform, session).expire_due()
        assert await RolloutProgress(platform, session).tick() == 1
    states = await device_states(platform, rollout_id)
    assert states[old] == (1, "failed", "unknown_command")
    assert states[silent] == (1, "failed", "expired")
    assert await status(platform, rollout_id) == ("completed", 1, None)


async def test_cancel_withdraws_offers_and_stops_serving_the_image(platform: Platform) -> None:
    org, fleet = await registered_fleet(platform, 3)
    package_id = await upload(platform, platform_package(platform, IMAGE, "1.1.0"))
    rollout_id = await create(platform, org, RolloutSpec(package_id, stages=(100,)))
    await act(platform, rollout_id, "start")
    downloading, queued, _ = fleet

    async def offered(device_id: str) -> bool:
        async with platform.db.transaction() as session:
            return await RolloutProgress(platform, session).is_offered(device_id, package_id)

    async with platform.db.transaction() as session:
        await CommandService(platform, session).mark_sent(
            [(await commands(platform, downloading))[0].id]
        )
    assert await report(platform, downloading, package_id, "downloading")
    assert await offered(downloading)
    assert await offered(queued)  # sent (queued): may fetch once it has the offer
    assert await act(platform, rollout_id, "cancel") == "cancelled"
    assert not await offered(downloading)  # cancelled: no more chunks for anyone
    states = await device_states(platform, rollout_id)
    assert states[queued][1] == "cancelled"
    assert states[downloading][1] == "downloading"
    assert (await commands(platform, queued))[0].status == CommandStatus.CANCELLED
    with pytest.raises(AnjuError) as exc:
        await act(platform, rollout_id, "resume")
    assert exc.value.code == "illegal_rollout_transition"
    # Cancelled rollouts are not open: the devices may join a new one.
    again = await create(platform, org, RolloutSpec(package_id, device_ids=(queued,)))
    assert list(await device_states(platform, again)) == [queued]


async def test_stalled_stage_pauses_and_bad_specs_are_refused(platform: Platform) -> None:
    org, _ = await registered_fleet(platform, 4)
    package_id = await upload(platform, platform_package(platform, IMAGE, "1.1.0"))
    # 50 % failures allowed, 100 % success needed: one failure settles the stage short.
    rollout_id = await create(
        platform,
        org,
        RolloutSpec(
            package_id, stages=(50, 100), success_threshold_pct=100, failure_threshold_pct=50
        ),
    )
    await act(platform, rollout_id, "start")
    first = in_state(await device_states(platform, rollout_id), "sent")
    assert await report(platform, first[0], package_id, "failed", "fw_download_failed")
    assert await status(platform, rollout_id) == ("running", 1, None)
    await report_all(platform, [first[1]], package_id)
    assert await status(platform, rollout_id) == ("paused", 1, "below_success_threshold")
    assert await act(platform, rollout_id, "resume") == "running"  # the failure is accepted
    rest = in_state(await device_states(platform, rollout_id), "sent")
    assert len(rest) == 2
    await report_all(platform, rest, package_id)
    assert (await status(platform, rollout_id))[0] == "completed"

    for bad in (
        RolloutSpec(package_id, stages=(50,)),
        RolloutSpec(package_id, stages=(50, 40, 100)),
        RolloutSpec(package_id, stages=()),
        RolloutSpec(package_id, success_threshold_pct=101),
        RolloutSpec(package_id, from_version="v1"),
        RolloutSpec(package_id, command_ttl_seconds=1),
        RolloutSpec(package_id, device_ids=("not-a-device-id",)),
    ):
        with pytest.raises(AnjuError) as exc:
            await create(platform, org, bad)
        assert exc.value.code == "invalid_input", bad
    with pytest.raises(AnjuError) as exc:
        await create(platform, org, RolloutSpec("no-such-package"))
    assert exc.value.code == "not_found"
    with pytest.raises(AnjuError) as exc:  # nobody reports 0.9.0
        await create(platform, org, RolloutSpec(package_id, from_version="0.9.0"))
    assert exc.value.code == "no_eligible_devices"


async def test_from_version_selects_devices_reporting_it(platform: Platform) -> None:
    org, old = await registered_fleet(platform, 2, firmware="anju-lock/0.1.0")
    _, mid = await registered_fleet(platform, 2, org_id=org, firmware="anju-lock/0.5.0")
    _, unknown = await registered_fleet(platform, 1, org_id=org, firmware=None)
    package_id = await upload(platform, platform_package(platform, IMAGE, "1.0.0", min_from="0.5"))
    picked = await create(platform, org, RolloutSpec(package_id, from_version="0.5.0"))
    assert sorted(await device_states(platform, picked)) == sorted(mid)
    await act(platform, picked, "cancel")
    everyone = await create(platform, None, RolloutSpec(package_id))  # the operator: all orgs
    assert sorted(await device_states(platform, everyone)) == sorted(old + mid + unknown)


async def test_reports_for_other_packages_states_or_devices_are_ignored(
    platform: Platform,
) -> None:
    org, fleet = await registered_fleet(platform, 1)
    package_id = await upload(platform, platform_package(platform, IMAGE, "1.1.0"))
    other_pkg = await upload(platform, platform_package(platform, image_bytes(50), "1.2.0"))
    rollout_id = await create(platform, org, RolloutSpec(package_id, stages=(100,)))
    await act(platform, rollout_id, "start")
    assert not await report(platform, fleet[0], other_pkg, "updated")  # not offered that one
    assert not await report(platform, fleet[0], package_id, "exploded")  # unknown state
    assert not await report(platform, "0" * 32, package_id, "updated")  # unknown device
    assert (await device_states(platform, rollout_id))[fleet[0]][1] == "sent"
