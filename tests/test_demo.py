"""``anju demo``: the whole journey as a newcomer runs it — the real command in its own process,
on SQLite and on PostgreSQL — and what it leaves behind: an audit log that verifies and no
guest's identity in clear anywhere in storage or in what it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.plaintext_scan import scan_platform_storage

ANJU = [str(Path(sys.executable).with_name("anju"))]
GUESTS = [
    {"name": "欧阳娜娜", "id_number": "110105199003070025", "phone": "13912345678"},
    {"name": "买买提·艾力", "id_number": "650102198512120010", "phone": "13987654321"},
]


def anju(*args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJU_")}
    if database_url is not None and not database_url.startswith("sqlite"):
        env["ANJU_DATABASE_URL"] = database_url
    return subprocess.run(
        [*ANJU, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


@pytest.mark.slow
@pytest.mark.req("L1", "L5", "L6", "L13", "R14", "N3")
def test_the_demo_runs_the_whole_journey_and_leaves_a_verifiable_record(
    tmp_path: Path, database_url: str
) -> None:
    data = tmp_path / "demo"
    guests = tmp_path / "guests.json"
    guests.write_text(json.dumps(GUESTS, ensure_ascii=False), encoding="utf-8")
    result = anju(
        "demo", "--data-dir", str(data), "--guests", str(guests), database_url=database_url
    )
    assert result.returncode == 0, result.stdout + result.stderr
    steps = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(steps) >= 10
    assert all(" ✓ " in line for line in steps), result.stdout
    assert "every step behaved as it should" in result.stdout

    verified = anju("audit", "verify", "--data-dir", str(data), database_url=database_url)
    assert verified.returncode == 0, verified.stderr
    assert "intact" in verified.stdout

    printed = result.stdout + result.stderr
    for guest in GUESTS:
        assert guest["name"] not in printed
        assert guest["id_number"] not in printed
        assert guest["phone"] not in printed
    url = (
        database_url
        if not database_url.startswith("sqlite")
        else f"sqlite+aiosqlite:///{data / 'anju.db'}"
    )
    values = [v for g in GUESTS for v in g.values()]
    (tmp_path / "scan").mkdir()
    assert scan_platform_storage(url, values, tmp_path / "scan") == []


@pytest.mark.req("L1")
def test_the_demo_refuses_a_used_directory_and_bad_guest_files(tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "anju.db").write_bytes(b"something")
    result = anju("demo", "--data-dir", str(used))
    assert result.returncode == 2
    assert "not empty" in result.stderr
    assert (used / "anju.db").read_bytes() == b"something"  # nothing touched

    bad_files = {
        "not-json.json": "{not json",
        "one.json": json.dumps(GUESTS[:1]),
        "extra.json": json.dumps([{**GUESTS[0], "email": "x@example.cn"}, GUESTS[1]]),
        "digit.json": json.dumps([{**GUESTS[0], "id_number": "110105199003070024"}, GUESTS[1]]),
        "same.json": json.dumps([GUESTS[0], GUESTS[0]]),
        "big.json": json.dumps([{**GUESTS[0], "name": "张" * 70_000}, GUESTS[1]]),
    }
    for name, text in bad_files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        result = anju("demo", "--data-dir", str(tmp_path / f"d-{name}"), "--guests", str(path))
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert "[invalid" in result.stderr, (name, result.stderr)
        assert not (tmp_path / f"d-{name}").exists() or not any(
            (tmp_path / f"d-{name}").iterdir()
        ), name
    missing = anju("demo", "--data-dir", str(tmp_path / "m"), "--guests", str(tmp_path / "nope"))
    assert missing.returncode == 2
