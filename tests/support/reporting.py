"""Helpers of regulator reporting tests: registered guests, unlock records, a platform that
sends to a fake regulator on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from anju.people.application import Application
from anju.people.registration import Registrar
from anju.people.service import Actor
from anju.people.verification.base import StaffCheck
from anju.platform import Platform
from anju.reporting.fake_regulator import FakeRegulator
from anju.reporting.tasks import ReportSender
from anju.reporting.wire import REPORT_SIGNER
from anju.unlocks.models import UnlockRecord


async def register_guest(platform: Platform, org_id: str, guest: Application) -> str:
    """Register ``guest`` in ``org_id`` as a front-desk clerk would; the subject id."""
    async with platform.db.transaction() as session:
        result = await Registrar(platform, session).register(
            Actor("account:desk-1", org_id), guest, StaffCheck(original_document_checked=True)
        )
    return result.subject_id


async def add_unlocks(
    platform: Platform,
    org_id: str,
    times: list[datetime],
    *,
    result: str = "granted",
    subject: str | None = "psn_guest",
) -> list[str]:
    """Unlock records of ``org_id`` at ``times`` (as the gateway would have stored them)."""
    ids = []
    async with platform.db.transaction() as session:
        for at in times:
            record_id = str(uuid.uuid4())
            ids.append(record_id)
            session.add(
                UnlockRecord(
                    id=record_id,
                    org_id=org_id,
                    device_id="lock-0001",
                    event_id=record_id,
                    place_kind="room",
                    place_ref="A-301",
                    subject=subject if result == "granted" else None,
                    credential_id="cred-1",
                    method="passcode",
                    result=result,
                    reason=None if result == "granted" else "unknown_credential",
                    at=at,
                    received_at=at,
                    record="{}",
                    signature="",
                )
            )
    return ids


def sending_to(platform: Platform, regulator: FakeRegulator, tmp_path: Path) -> Platform:
    """``platform`` configured to send its reports to ``regulator``."""
    key_file = tmp_path / "regulator.pem"
    key_file.write_text(regulator.public_key.to_pem())
    settings = platform.settings.model_copy(
        update={
            "regulator_enabled": True,
            "regulator_url": regulator.url,
            "regulator_public_key": key_file,
            "regulator_timeout_seconds": 2.0,
        }
    )
    return Platform(settings=settings, db=platform.db, keys=platform.keys, clock=platform.clock)


@contextmanager
def fake_regulator(platform: Platform) -> Iterator[FakeRegulator]:
    """A fake regulator on loopback that trusts ``platform``'s report signing key."""
    with FakeRegulator(platform.keys.signer(REPORT_SIGNER).public_key) as regulator:
        yield regulator


async def send_all(platform: Platform) -> int:
    """One sender pass; how many reports it attempted."""
    sender = ReportSender(platform)
    try:
        return await sender.send_due()
    finally:
        await sender.aclose()
