"""The retention sweep: due data removed or crypto-shredded, proven in the audit log (L10, L12)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from anju.audit import AuditLog
from anju.audit.models import AuditEntry
from anju.biometrics.models import FaceCapture, FaceTemplate
from anju.biometrics.service import BiometricService, Operator
from anju.errors import KeyUnavailable
from anju.face.template import ProtectedTemplate
from anju.kit.clock import FixedClock
from anju.kit.keyring import FileKeyProvider
from anju.platform import Platform
from anju.privacy.column import Sealed
from anju.privacy.models import SubjectDataKey
from anju.privacy.vault import PIVault
from anju.retention.service import RetentionService
from anju.retention.tasks import run_sweep, sweep_periodically
from tests.support.plaintext_scan import platform_storage_files

DESK = Operator("account:clerk-1", "kiosk-1", "org-hotel-a")


async def _enrol(platform: Platform, subject: str) -> tuple[str, Sealed]:
    """A template stored for ``subject`` (as a device enrolment does); its row id and blob."""
    async with platform.db.transaction() as session:
        faces = BiometricService(platform, session)
        await faces.store_protected(subject, 1, ProtectedTemplate(bytes(range(128))), DESK)
        row = (
            await session.execute(select(FaceTemplate).where(FaceTemplate.subject_id == subject))
        ).scalar_one()
        assert row.template is not None
        return row.id, row.template


async def _check_out(platform: Platform, subject: str) -> None:
    async with platform.db.transaction() as session:
        await RetentionService(platform, session).mark_anchor(
            "account:clerk-1", subject, "check_out", org_id="org-hotel-a"
        )


async def _swept_entries(platform: Platform) -> list[dict[str, object]]:
    async with platform.db.transaction() as session:
        rows = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "retention.swept"))
        ).scalars()
        return [json.loads(r.details) | {"target": r.target, "at": r.recorded_at} for r in rows]


@pytest.mark.req("L10", "L12", "F5")
async def test_swept_data_cannot_be_read_even_with_the_database_and_the_key_file(
    platform: Platform, clock: FixedClock
) -> None:
    gone_row, gone_blob = await _enrol(platform, "guest-gone")
    kept_row, kept_blob = await _enrol(platform, "guest-staying")
    async with platform.db.transaction() as session:
        name_blob = await PIVault(platform).seal(
            session, "person.name", "guest-gone", "p-1", "张三"
        )
    await _check_out(platform, "guest-gone")
    clock.advance(days=31)  # past the 30-day period of every field sealed for the subject

    report = await run_sweep(platform, batch_size=2)

    assert report.counts["biometric_template"] == 1
    assert report.counts["subject_data_key"] == 1
    # An attacker with a copy of the old rows and the keyring file on disk still reads nothing.
    keys = FileKeyProvider.load(platform.settings.resolved_key_file)
    thief = Platform(platform.settings, platform.db, keys, clock)
    async with platform.db.transaction() as session:
        for field, row_id, blob in (
            ("biometric.face_template", gone_row, gone_blob),
            ("person.name", "p-1", name_blob),
        ):
            with pytest.raises(KeyUnavailable):
                await PIVault(thief, cache_size=1, cache_ttl=0).open_bytes(
                    session,
                    field,
                    "guest-gone",
                    row_id,
                    blob,
                    purpose="identity_verification",
                    actor="account:thief",
                )
        template = await session.get(FaceTemplate, gone_row)
        assert template is not None
        assert template.template is None
        # The guest still staying is untouched.
        opened = await PIVault(thief).open_bytes(
            session,
            "biometric.face_template",
            "guest-staying",
            kept_row,
            kept_blob,
            purpose="identity_verification",
            actor="account:desk",
        )
        assert opened == bytes(ProtectedTemplate(bytes(range(128))))
        assert (await AuditLog(platform).verify(session)).problems == []

    swept = await _swept_entries(platform)
    kinds = {e["kind"]: e for e in swept}
    assert set(kinds) == {"biometric_template", "subject_data_key"}
    for entry in kinds.values():
        assert entry["subject_ids"] == "guest-gone"
        assert entry["reason"] == "retention_period_passed"
        assert entry["anchor"] == "check_out"
        assert entry["removed"] == 1
    assert "张三" not in json.dumps([str(e) for e in swept], ensure_ascii=False)


@pytest.mark.req("L10", "L12")
async def test_nothing_is_swept_before_the_period_ends_and_a_second_sweep_finds_nothing(
    platform: Platform, clock: FixedClock
) -> None:
    await _enrol(platform, "guest-early")
    await _check_out(platform, "guest-early")
    clock.advance(days=29)
    early = await run_sweep(platform)
    assert early.counts["subject_data_key"] == 0
    assert early.counts["biometric_template"] == 1  # templates go at check-out (0 days)
    clock.advance(days=2)
    due = await run_sweep(platform)
    again = await run_sweep(platform)
    assert due.counts["subject_data_key"] == 1
    assert due.removed == 1
    assert again.removed == 0


@pytest.mark.req("L10", "F5")
async def test_capture_log_rows_older_than_their_period_are_deleted(
    platform: Platform, clock: FixedClock
) -> None:
    async with platform.db.transaction() as session:
        await BiometricService(platform, session).record_capture(
            "document_1to1", "match", [], DESK, "guest-old"
        )
    clock.advance(days=100)
    async with platform.db.transaction() as session:
        await BiometricService(platform, session).record_capture(
            "document_1to1", "match", [], DESK, "guest-new"
        )
    clock.advance(days=81)  # the first is 181 days old, the second 81
    report = await run_sweep(platform)
    assert report.counts["biometric_capture_log"] == 1
    async with platform.db.transaction() as session:
        left = (await session.execute(select(FaceCapture.subject_id))).scalars().all()
    assert left == ["guest-new"]
    (entry,) = [e for e in await _swept_entries(platform) if e["kind"] == "biometric_capture_log"]
    assert entry["subject_ids"] == "guest-old"
    assert entry["days"] == 180


@pytest.mark.req("L10", "F5")
async def test_the_serve_loop_sweeps_on_its_interval_and_stops(
    platform: Platform, clock: FixedClock
) -> None:
    await _enrol(platform, "guest-loop")
    await _check_out(platform, "guest-loop")
    clock.advance(days=31)
    settings = platform.settings.model_copy(update={"retention_sweep_seconds": 0.05})
    looping = Platform(settings, platform.db, platform.keys, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(sweep_periodically(looping, stop))
    for _ in range(200):
        async with platform.db.transaction() as session:
            runs = await RetentionService(platform, session).runs()
        if len(runs) >= 2:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert len(runs) >= 2
    assert sum(r.removed for r in runs) == 2  # the template and the key, once
    off = Platform(
        platform.settings.model_copy(update={"retention_sweep_seconds": 0}),
        platform.db,
        platform.keys,
        clock,
    )
    await asyncio.wait_for(sweep_periodically(off, asyncio.Event()), timeout=1)


@pytest.mark.req("L10", "L12", "L14")
async def test_no_copy_of_a_shredded_key_is_left_in_the_database_files(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    await _enrol(platform, "guest-files")
    async with platform.db.transaction() as session:
        key = await session.get(SubjectDataKey, ("guest-files", 1))
        assert key is not None
        assert key.wrapped_key is not None
        wrapped = bytes(key.wrapped_key)
    await _check_out(platform, "guest-files")
    clock.advance(days=31)
    assert (await run_sweep(platform)).counts["subject_data_key"] == 1
    files = platform_storage_files(platform.settings.resolved_database_url, tmp_path)
    assert files
    for path in files:
        data = path.read_bytes()
        assert wrapped not in data, path  # SQLite file, WAL and journal, byte for byte
        assert wrapped.hex().encode() not in data, path  # a pg_dump prints bytea as hex
