"""``anju admin create`` / ``anju admin list``: bootstrap the first security administrator."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anju.cli.main import app

runner = CliRunner()
PASSWORD = "Correct-Horse-42"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    result = runner.invoke(app, ["db", "upgrade", "--data-dir", str(target)])
    assert result.exit_code == 0, result.output
    return target


@pytest.mark.req("L7", "R17", "F1")
def test_create_first_admin_from_stdin_prints_totp_uri_and_is_audited(data_dir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "admin",
            "create",
            "--login",
            "root-admin",
            "--password-stdin",
            "--data-dir",
            str(data_dir),
        ],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "otpauth://totp/anju:root-admin?secret=" in result.output
    assert PASSWORD not in result.output

    listed = runner.invoke(app, ["admin", "list", "--data-dir", str(data_dir)])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.startswith("root-admin"))
    assert "(platform)" in row
    assert "security_admin" in row
    assert "no-2fa" in row

    with sqlite3.connect(data_dir / "anju.db") as db:
        audit = db.execute("SELECT actor, action, details FROM audit_entries").fetchall()
        stored_hash = db.execute("SELECT password_hash FROM accounts").fetchone()[0]
    assert ("cli", "accounts.account.created") in {(a, b) for a, b, _ in audit}
    assert ("cli", "accounts.role.granted") in {(a, b) for a, b, _ in audit}
    assert all(PASSWORD not in details for _, _, details in audit)
    assert stored_hash.startswith("$argon2id$")


@pytest.mark.req("L7")
def test_create_org_admin_with_prompted_password(data_dir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "admin",
            "create",
            "--login",
            "hotel-sa",
            "--org",
            "Lakeside Hotels",
            "--org-kind",
            "hotel_group",
            "--data-dir",
            str(data_dir),
        ],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["admin", "list", "--data-dir", str(data_dir)])
    assert "hotel-sa\tLakeside Hotels\tsecurity_admin" in listed.output


@pytest.mark.req("R17", "F1")
def test_weak_or_mismatched_passwords_are_refused(data_dir: Path) -> None:
    weak = runner.invoke(
        app,
        [
            "admin",
            "create",
            "--login",
            "root-admin",
            "--password-stdin",
            "--data-dir",
            str(data_dir),
        ],
        input="password1234\n",
    )
    assert weak.exit_code == 1
    assert "weak_password" in weak.output
    assert "too common" in weak.output
    mismatch = runner.invoke(
        app,
        ["admin", "create", "--login", "root-admin", "--data-dir", str(data_dir)],
        input=f"{PASSWORD}\nSomething-Else-9\n",
    )
    assert mismatch.exit_code != 0
    listed = runner.invoke(app, ["admin", "list", "--data-dir", str(data_dir)])
    assert "root-admin" not in listed.output


@pytest.mark.req("L7")
def test_login_names_are_unique(data_dir: Path) -> None:
    args = ["admin", "create", "--login", "root-admin", "--password-stdin"]
    first = runner.invoke(app, [*args, "--data-dir", str(data_dir)], input=PASSWORD + "\n")
    assert first.exit_code == 0, first.output
    again = runner.invoke(
        app, [*args, "--org", "Other", "--data-dir", str(data_dir)], input=PASSWORD + "\n"
    )
    assert again.exit_code == 1
    assert "conflict" in again.output
