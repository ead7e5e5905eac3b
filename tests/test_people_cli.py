"""``anju people register|show``: PI read from stdin (never argv), output masked or ids only."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anju.cli.main import app
from anju.people.verification.fake_ctid import FakeCtidService
from anju.platform import open_platform
from anju.settings import Settings
from tests.support.people import consenting_subject, people

runner = CliRunner()
ORG = "org-hotel-a"


async def consent_of(data_dir: str) -> str:
    """A subject id with consent to the privacy notice recorded (as the kiosk does)."""
    async with open_platform(Settings(data_dir=Path(data_dir))) as platform:
        return await consenting_subject(platform, ORG)


@pytest.mark.req("N1", "N2", "N3", "L3")
def test_register_with_ctid_and_staff_check_then_show_masked(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    assert runner.invoke(app, ["db", "upgrade", "--data-dir", data_dir]).exit_code == 0
    first, second = people(2)
    service = FakeCtidService()
    service.add_identity(first.document_type, first.document_number, first.name)
    service.start()
    try:
        config = tmp_path / "ctid.json"
        config.write_text(
            json.dumps(
                {
                    "base_url": service.url,
                    "app_id": service.app_id,
                    "app_secret_hex": service.app_secret.hex(),
                    "service_public_key_pem": service.key.public_key.to_pem(),
                }
            )
        )
        base = ["people", "register", "-", "--operator", "desk-7", "--data-dir", data_dir]
        base += ["--org-id", ORG]
        ctid = ["--method", "ctid", "--ctid-config", str(config)]
        # No consent recorded for the person: refused before the identity service is asked.
        refused = runner.invoke(app, [*base, *ctid], input=json.dumps(dataclasses.asdict(first)))
        assert refused.exit_code == 1
        assert "[consent_required]" in refused.output
        subject_id = asyncio.run(consent_of(data_dir))
        result = runner.invoke(
            app,
            [*base, *ctid, "--subject-id", subject_id],
            input=json.dumps(dataclasses.asdict(first)),
        )
    finally:
        service.stop()
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["outcome"], out["subject_id"]) == ("registered", subject_id)
    base += ["--subject-id", asyncio.run(consent_of(data_dir))]

    again = runner.invoke(
        app, [*base, "--original-checked"], input=json.dumps(dataclasses.asdict(first))
    )
    assert again.exit_code == 1
    assert "[duplicate_person]" in again.output
    unchecked = runner.invoke(app, base, input=json.dumps(dataclasses.asdict(second)))
    assert unchecked.exit_code == 1
    assert "[original_document_not_checked]" in unchecked.output
    bad = {**dataclasses.asdict(second), "document_number": "123"}
    refused = runner.invoke(app, [*base, "--original-checked"], input=json.dumps(bad))
    assert refused.exit_code == 1
    assert "[invalid_document_number]" in refused.output
    assert "123" not in refused.output.replace("[invalid_document_number]", "")

    show = ["people", "show", out["person_id"], "--org-id", ORG, "--data-dir", data_dir]
    shown = runner.invoke(app, show)
    assert shown.exit_code == 0, shown.output
    masked = json.loads(shown.stdout)["masked"]
    assert masked["document_number"].startswith(first.document_number[:6] + "****")
    for value in (first.name, first.document_number, first.phone, first.address):
        assert value not in shown.output
        assert value not in result.output
