"""``anju consent verify-receipt``/``receipt-key`` and ``anju retention policies``/``sweep``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anju.cli.common import settings_for
from anju.cli.main import app
from anju.consent.service import ConsentService
from anju.platform import open_platform
from tests.support.consent import CLERK, ORG, face_notice

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An upgraded embedded installation."""
    target = tmp_path / "data"
    result = runner.invoke(app, ["db", "upgrade", "--data-dir", str(target)])
    assert result.exit_code == 0, result.output
    return target


def _receipt(data_dir: Path) -> dict[str, object]:
    async def go() -> dict[str, object]:
        settings = settings_for(data_dir)
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            service = ConsentService(platform, session)
            await service.publish(ORG, "account:dpo", face_notice())
            event = await service.record(
                ORG,
                CLERK,
                subject_id="guest-cli",
                kind="face_recognition",
                version=1,
                purpose="lock_credential_issue",
                action="given",
                channel="paper",
            )
            return service.receipt(event)

    return asyncio.run(go())


@pytest.mark.req("L4", "L3")
def test_verify_receipt_with_the_keyring_or_a_published_key(data_dir: Path, tmp_path: Path) -> None:
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(_receipt(data_dir), ensure_ascii=False))
    ok = runner.invoke(
        app, ["consent", "verify-receipt", str(receipt), "--data-dir", str(data_dir)]
    )
    assert ok.exit_code == 0, ok.output
    assert "receipt valid: given lock_credential_issue" in ok.output

    pem = runner.invoke(app, ["consent", "receipt-key", "--data-dir", str(data_dir)])
    assert pem.exit_code == 0
    assert "BEGIN PUBLIC KEY" in pem.output
    key = tmp_path / "consent.pem"
    key.write_text(pem.output)
    offline = runner.invoke(
        app, ["consent", "verify-receipt", str(receipt), "--public-key", str(key)]
    )
    assert offline.exit_code == 0, offline.output

    tampered = json.loads(receipt.read_text())
    tampered["receipt"]["subject_id"] = "someone-else"
    receipt.write_text(json.dumps(tampered))
    bad = runner.invoke(app, ["consent", "verify-receipt", str(receipt), "--public-key", str(key)])
    assert bad.exit_code == 1
    assert "NOT valid" in bad.output
    assert "integrity_check_failed" in bad.output
    receipt.write_text("not json")
    garbage = runner.invoke(
        app, ["consent", "verify-receipt", str(receipt), "--public-key", str(key)]
    )
    assert garbage.exit_code == 1
    assert "invalid_input" in garbage.output


@pytest.mark.req("L10", "L12")
def test_retention_policies_sweep_and_overrides(data_dir: Path) -> None:
    listed = runner.invoke(app, ["retention", "policies", "--json", "--data-dir", str(data_dir)])
    assert listed.exit_code == 0, listed.output
    kinds = {p["kind"]: p for p in json.loads(listed.output)}
    assert kinds["biometric_capture_log"]["days"] == 180
    swept = runner.invoke(app, ["retention", "sweep", "--data-dir", str(data_dir)])
    assert swept.exit_code == 0, swept.output
    assert "removed 0" in swept.output

    (data_dir / "anju.toml").write_text("[retention_days]\nbiometric_capture_log = 365\n")
    longer = runner.invoke(app, ["retention", "policies", "--json", "--data-dir", str(data_dir)])
    assert {p["kind"]: p["days"] for p in json.loads(longer.output)}["biometric_capture_log"] == 365
    # Shorter than the legal minimum, or an unknown kind: refused at configuration time.
    for toml in ("unlock_record = 30", "portrait = 10", "nonsense = 1"):
        (data_dir / "anju.toml").write_text(f"[retention_days]\n{toml}\n")
        refused = runner.invoke(app, ["retention", "policies", "--data-dir", str(data_dir)])
        assert refused.exit_code == 2, toml


@pytest.mark.req("L4", "L6")
def test_publish_and_list_notices_from_the_command_line(data_dir: Path, tmp_path: Path) -> None:
    notice = {
        "kind": "regulator_reporting",
        "title_zh": "向公安机关报送告知",
        "title_en": "Reporting to the regulator",
        "text_zh": "依法报送身份信息与开锁记录。",
        "text_en": "Identity and unlock records are reported as the law asks.",
        "items": [
            {
                "purpose": "regulator_report",
                "categories": ["name", "identity_number"],
                "required": True,
            }
        ],
    }
    path = tmp_path / "notice.json"
    path.write_text(json.dumps(notice, ensure_ascii=False), encoding="utf-8")
    args = ["--org", "org-cli", "--data-dir", str(data_dir)]
    published = runner.invoke(app, ["consent", "publish", str(path), *args])
    assert published.exit_code == 0, published.output
    assert published.output.startswith("regulator_reporting v1 SM3 ")
    again = runner.invoke(app, ["consent", "publish", str(path), *args])
    assert again.exit_code == 1
    assert "notice_unchanged" in again.output
    listed = runner.invoke(app, ["consent", "notices", *args])
    assert "regulator_reporting  v1" in listed.output
    assert "regulator_report" in listed.output
    assert (
        runner.invoke(
            app, ["consent", "notices", "--org", "org-other", "--data-dir", str(data_dir)]
        ).output
        == ""
    )
    path.write_text(json.dumps(notice | {"kind": "advertising"}))
    assert runner.invoke(app, ["consent", "publish", str(path), *args]).exit_code == 2
    path.write_text("{")
    assert runner.invoke(app, ["consent", "publish", str(path), *args]).exit_code == 2
