"""Device registry rules: claiming, organisation isolation, lifecycle, gateway look-ups, audit."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from anju.devices.lifecycle import MAX_CLAIM_FAILURES, Status, claim_code
from anju.devices.repository import DeviceFilter
from anju.devices.service import DeviceService, Place
from anju.errors import AnjuError
from anju.kit.clock import FixedClock
from anju.kit.crypto import random_bytes
from anju.platform import Platform
from anju.protocol.certificates import Certificate
from anju.protocol.errors import ProtocolError
from anju.protocol.keys import derive_session_keys
from tests.support.registry import (
    PIN,
    as_device_principal,
    audit_entries,
    claim,
    device_row,
    manufacture,
    tenant,
)


async def expect_error(awaitable: Awaitable[Any], code: str) -> AnjuError:
    with pytest.raises(AnjuError) as caught:
        await awaitable
    assert caught.value.code == code, caught.value
    return caught.value


# --- claiming ----------------------------------------------------------------------------------
@pytest.mark.req("L14", "R11", "R17")
async def test_claim_with_label_code_binds_device_to_org_and_place(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    a = await tenant(platform, clock, "sa-a", "Org A")
    device = await claim(platform, a, made, Place("room", "1203"))
    assert device.status == Status.REGISTERED
    assert device.org_id == a.admin.org_id
    assert (device.place_kind, device.place_ref) == ("room", "1203")
    listed = await as_device_principal(
        platform, a.token, lambda s, p: s.list_devices(p, DeviceFilter())
    )
    assert [d.id for d in listed] == [made.device_id]
    entries = await audit_entries(platform, "devices.registered")
    assert [(e.outcome, e.org_id) for e in entries] == [("success", a.admin.org_id)]
    ops = await as_device_principal(platform, a.token, lambda s, p: s.operations(p, made.device_id))
    assert [op.operation for op in ops] == ["registered"]


@pytest.mark.req("L14", "R17")
async def test_wrong_claim_code_is_refused_counted_and_locks_after_limit(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    a = await tenant(platform, clock, "sa-a", "Org A")
    wrong = "AAAA-AAAA-AAAAA"
    assert wrong != claim_code(made.root_key)
    for _ in range(MAX_CLAIM_FAILURES):
        await expect_error(
            as_device_principal(
                platform,
                a.token,
                lambda s, p: s.register_device(p, made.device_id, claim_code=wrong),
            ),
            "claim_code_invalid",
        )
    row = await device_row(platform, made.device_id)
    assert row.claim_failures == MAX_CLAIM_FAILURES
    assert row.status == Status.MANUFACTURED
    assert row.org_id is None
    # Locked now, even with the right code; the platform operator can still register it.
    await expect_error(claim(platform, a, made), "claim_locked")
    denied = [e for e in await audit_entries(platform, "devices.registered")]
    assert len(denied) == MAX_CLAIM_FAILURES + 1
    assert all(e.outcome == "denied" for e in denied)
    async with platform.db.transaction() as session:
        assert a.admin.org_id is not None
        await DeviceService(platform, session).register_device_as_operator(
            made.device_id, a.admin.org_id
        )
    assert (await device_row(platform, made.device_id)).claim_failures == 0


@pytest.mark.req("L14")
async def test_claim_code_accepts_lowercase_and_no_hyphens(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    a = await tenant(platform, clock, "sa-a", "Org A")
    typed = claim_code(made.root_key).replace("-", "").lower()
    device = await as_device_principal(
        platform, a.token, lambda s, p: s.register_device(p, made.device_id, claim_code=typed)
    )
    assert device.status == Status.REGISTERED


@pytest.mark.req("R17")
async def test_claim_needs_a_recent_second_factor(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    a = await tenant(platform, clock, "sa-a", "Org A")
    clock.advance(seconds=platform.settings.second_factor_window_seconds + 1)
    await expect_error(claim(platform, a, made), "second_factor_required")


# --- organisation isolation --------------------------------------------------------------------
@pytest.mark.req("R11", "R16")
async def test_other_organisations_device_is_not_found(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    made_a, made_b = await manufacture(platform, tmp_path, count=2)
    a = await tenant(platform, clock, "sa-a", "Org A")
    b = await tenant(platform, clock, "sa-b", "Org B")
    await claim(platform, a, made_a)
    for work in (
        lambda s, p: s.get_device(p, made_a.device_id),
        lambda s, p: s.operations(p, made_a.device_id),
        lambda s, p: s.update_attributes(p, made_a.device_id, {"name": "x"}),
        lambda s, p: s.revoke(p, made_a.device_id, None),
        lambda s, p: s.decommission(p, made_a.device_id, None),
        lambda s, p: s.set_place(p, made_a.device_id, None),
        # Claiming someone else's (already registered) device looks like "no such device".
        lambda s, p: s.register_device(p, made_a.device_id, claim_code=claim_code(made_a.root_key)),
    ):
        await expect_error(as_device_principal(platform, b.token, work), "not_found")
    listed = await as_device_principal(
        platform, b.token, lambda s, p: s.list_devices(p, DeviceFilter())
    )
    assert listed == []
    # An unclaimed device is visible by exact id to a devices.manage holder, for claiming.
    seen = await as_device_principal(
        platform, b.token, lambda s, p: s.get_device(p, made_b.device_id)
    )
    assert seen.status == Status.MANUFACTURED
    assert (await device_row(platform, made_a.device_id)).org_id == a.admin.org_id


@pytest.mark.req("R11")
async def test_place_is_unique_per_organisation_while_bound(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    one, two, three = await manufacture(platform, tmp_path, count=3)
    a = await tenant(platform, clock, "sa-a", "Org A")
    b = await tenant(platform, clock, "sa-b", "Org B")
    await claim(platform, a, one, Place("door", "A-1"))
    await expect_error(claim(platform, a, two, Place("door", "A-1")), "conflict")
    await claim(platform, b, three, Place("door", "A-1"))  # another organisation: fine
    await as_device_principal(platform, a.token, lambda s, p: s.set_place(p, one.device_id, None))
    await claim(platform, a, two, Place("door", "A-1"))


# --- lifecycle ---------------------------------------------------------------------------------
@pytest.mark.req("R11", "L14")
async def test_illegal_transitions_are_refused_and_audited(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    a = await tenant(platform, clock, "sa-a", "Org A")
    await claim(platform, a, made)
    # registered (never connected) cannot be suspended or resumed
    await expect_error(
        as_device_principal(platform, a.token, lambda s, p: s.suspend(p, made.device_id)),
        "illegal_transition",
    )
    await expect_error(
        as_device_principal(platform, a.token, lambda s, p: s.resume(p, made.device_id)),
        "illegal_transition",
    )
    async with platform.db.transaction() as session:
        await DeviceService(platform, session).mark_online(made.device_id)
    assert (await device_row(platform, made.device_id)).status == Status.ACTIVE
    await as_device_principal(
        platform, a.token, lambda s, p: s.suspend(p, made.device_id, "maintenance")
    )
    await as_device_principal(platform, a.token, lambda s, p: s.resume(p, made.device_id))
    await as_device_principal(
        platform, a.token, lambda s, p: s.revoke(p, made.device_id, "compromised")
    )
    # revoked is final except for decommissioning
    for work in (
        lambda s, p: s.resume(p, made.device_id),
        lambda s, p: s.suspend(p, made.device_id),
        lambda s, p: s.revoke(p, made.device_id),
    ):
        await expect_error(as_device_principal(platform, a.token, work), "illegal_transition")
    await as_device_principal(platform, a.token, lambda s, p: s.decommission(p, made.device_id))
    await expect_error(
        as_device_principal(platform, a.token, lambda s, p: s.decommission(p, made.device_id)),
        "illegal_transition",
    )
    assert (await device_row(platform, made.device_id)).status == Status.DECOMMISSIONED
    refused = [e for e in await audit_entries(platform, "devices.resumed") if e.outcome == "denied"]
    assert len(refused) == 2
    for action in ("devices.activated", "devices.suspended", "devices.revoked"):
        assert any(e.outcome == "success" for e in await audit_entries(platform, action)), action
    ops = await as_device_principal(platform, a.token, lambda s, p: s.operations(p, made.device_id))
    assert [op.operation for op in reversed(ops)] == [
        "registered",
        "activated",
        "suspended",
        "resumed",
        "revoked",
        "decommissioned",
    ]


@pytest.mark.req("L14", "L16")
async def test_handshake_root_key_only_for_registered_or_active_devices(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    made, other = await manufacture(platform, tmp_path, count=2)
    a = await tenant(platform, clock, "sa-a", "Org A")

    async def root_for(cert: Certificate) -> bytes:
        async with platform.db.transaction() as session:
            return await DeviceService(platform, session).root_key_for_handshake(cert)

    async def rejected(cert: Certificate, reason: str) -> None:
        with pytest.raises(ProtocolError) as caught:
            await root_for(cert)
        assert caught.value.code == "device_rejected"
        assert caught.value.details["reason"] == reason

    await rejected(made.certificate, "status_manufactured")  # not claimed yet
    await claim(platform, a, made)
    root = await root_for(made.certificate)
    assert root == made.root_key
    # The platform's copy and the SE's own key derive the same session keys.
    kp, salt, info = random_bytes(32), random_bytes(32), b"anju/session/v1-test"
    made.se.verify_pin(PIN)
    assert made.se.derive_session_keys(kp, salt, info) == derive_session_keys(root, kp, salt, info)
    # Another device's certificate or an older certificate for this device is not accepted.
    from dataclasses import replace

    await rejected(replace(made.certificate, serial=bytes(16)), "certificate_mismatch")
    await rejected(replace(made.certificate, subject="0" * 32), "unknown_device")
    await rejected(replace(other.certificate, subject=made.device_id), "certificate_mismatch")
    async with platform.db.transaction() as session:
        await DeviceService(platform, session).mark_online(made.device_id)
    await as_device_principal(platform, a.token, lambda s, p: s.suspend(p, made.device_id))
    await rejected(made.certificate, "status_suspended")
    await as_device_principal(platform, a.token, lambda s, p: s.resume(p, made.device_id))
    assert await root_for(made.certificate) == made.root_key
    await as_device_principal(platform, a.token, lambda s, p: s.revoke(p, made.device_id, "stolen"))
    await rejected(made.certificate, "status_revoked")
    await as_device_principal(platform, a.token, lambda s, p: s.decommission(p, made.device_id))
    await rejected(made.certificate, "status_decommissioned")


@pytest.mark.req("L14", "L13")
async def test_decommission_destroys_the_wrapped_root_key(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    a = await tenant(platform, clock, "sa-a", "Org A")
    await claim(platform, a, made, Place("gate", "north"))
    wrapped = (await device_row(platform, made.device_id)).root_key_wrapped
    assert wrapped is not None
    assert made.root_key not in wrapped
    await as_device_principal(
        platform, a.token, lambda s, p: s.decommission(p, made.device_id, "end_of_life")
    )
    row = await device_row(platform, made.device_id)
    assert row.root_key_wrapped is None
    assert (row.place_kind, row.place_ref) == (None, None)
    assert row.status == Status.DECOMMISSIONED
    (entry,) = await audit_entries(platform, "devices.decommissioned")
    assert '"root_key_destroyed":true' in entry.details
    assert '"reason":"end_of_life"' in entry.details


@pytest.mark.req("R11")
async def test_state_reports_and_attributes(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    (made,) = await manufacture(platform, tmp_path)
    a = await tenant(platform, clock, "sa-a", "Org A")
    await claim(platform, a, made)
    async with platform.db.transaction() as session:
        svc = DeviceService(platform, session)
        await svc.mark_online(made.device_id)
        await svc.record_state(
            made.device_id,
            battery_pct=87,
            signal_dbm=-71,
            firmware_version="1.4.2",
            reported={"door": "closed"},
        )
    await as_device_principal(
        platform,
        a.token,
        lambda s, p: s.update_attributes(p, made.device_id, {"name": "Front door", "floor": 3}),
    )
    device = await as_device_principal(
        platform,
        a.token,
        lambda s, p: s.update_attributes(p, made.device_id, {"floor": None}),
    )
    assert device.online
    assert device.battery_pct == 87
    assert device.signal_dbm == -71
    assert device.firmware_version == "1.4.2"
    assert device.attributes == '{"name":"Front door"}'
    assert device.reported == '{"door":"closed"}'
    online = await as_device_principal(
        platform, a.token, lambda s, p: s.list_devices(p, DeviceFilter(online=True))
    )
    assert [d.id for d in online] == [made.device_id]
    async with platform.db.transaction() as session:
        await DeviceService(platform, session).mark_offline(made.device_id)
    offline = await as_device_principal(
        platform, a.token, lambda s, p: s.list_devices(p, DeviceFilter(online=True))
    )
    assert offline == []
    assert len(await audit_entries(platform, "devices.attributes.updated")) == 2
    await expect_error(
        as_device_principal(
            platform,
            a.token,
            lambda s, p: s.update_attributes(p, made.device_id, {"Bad Key": 1}),
        ),
        "invalid_input",
    )
