"""``anju keys status`` and ``anju keys rotate [--rewrap] [--retire-old]`` on a data directory."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from anju.cli.main import app
from anju.kit.keyring import FileKeyProvider
from anju.platform import open_platform
from anju.privacy.column import Sealed
from anju.privacy.vault import PIVault
from anju.settings import Settings

pytestmark = pytest.mark.req("L14", "R16")

runner = CliRunner()


def anju(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    code, out = anju("db", "upgrade", "--data-dir", str(path))
    assert code == 0, out
    return path


def seal_for(data_dir: Path, subjects: list[str]) -> dict[str, Sealed]:
    async def go() -> dict[str, Sealed]:
        async with open_platform(Settings(data_dir=data_dir)) as platform:
            vault = PIVault(platform)
            async with platform.db.transaction() as session:
                return {
                    s: await vault.seal(session, "person.phone", s, "row", "13800138000")
                    for s in subjects
                }

    return asyncio.run(go())


def open_all(data_dir: Path, sealed: dict[str, Sealed]) -> list[str]:
    async def go() -> list[str]:
        async with open_platform(Settings(data_dir=data_dir)) as platform:
            vault = PIVault(platform)
            async with platform.db.transaction() as session:
                return [
                    await vault.open(
                        session, "person.phone", s, "row", v, purpose="guest_contact", actor="x"
                    )
                    for s, v in sealed.items()
                ]

    return asyncio.run(go())


def audit_events(data_dir: Path) -> list[tuple[str, str, dict[str, object]]]:
    async def go() -> list[tuple[str, str, dict[str, object]]]:
        async with (
            open_platform(Settings(data_dir=data_dir)) as platform,
            platform.db.transaction() as session,
        ):
            rows = await session.execute(
                text(
                    "SELECT action, actor, details FROM audit_entries "
                    "WHERE action LIKE 'keys.%' ORDER BY leaf_index"
                )
            )
            return [(r[0], r[1], json.loads(r[2])) for r in rows.all()]

    return asyncio.run(go())


def version_rows(output: str) -> dict[str, tuple[str, int]]:
    return {
        m[1]: (m[2], int(m[3]))
        for m in re.finditer(r"^(v\d+)\s+(active|decrypt-only|retired)\s+(\d+)", output, re.M)
    }


def test_status_of_a_new_installation(data_dir: Path) -> None:
    code, out = anju("keys", "status", "--data-dir", str(data_dir))
    assert code == 0, out
    assert "provider / 密钥提供者: file" in out
    assert "mode 0600: OK" in out
    assert "min decryption version / 最低解密版本: v1" in out
    assert "key check / 密钥校验: OK" in out
    assert version_rows(out) == {"v1": ("active", 0)}


def test_rotate_rewrap_retire_keeps_data_readable(data_dir: Path) -> None:
    sealed = seal_for(data_dir, ["a", "b", "c"])
    code, out = anju("keys", "rotate", "--data-dir", str(data_dir))
    assert code == 0, out
    assert "v1 → v2" in out
    code, out = anju("keys", "status", "--data-dir", str(data_dir))
    assert version_rows(out) == {"v1": ("decrypt-only", 3), "v2": ("active", 0)}

    code, out = anju("keys", "rotate", "--data-dir", str(data_dir), "--rewrap", "--retire-old")
    assert code == 0, out
    assert "已重新封装的数据密钥: 3" in out
    code, out = anju("keys", "status", "--data-dir", str(data_dir))
    assert version_rows(out) == {
        "v1": ("retired", 0),
        "v2": ("retired", 0),
        "v3": ("active", 3),
    }
    assert "最低解密版本: v3" in out
    assert open_all(data_dir, sealed) == ["13800138000"] * 3
    assert audit_events(data_dir) == [
        ("keys.master.rotated", "cli", {"from_version": 1, "to_version": 2}),
        ("keys.master.rotated", "cli", {"from_version": 2, "to_version": 3}),
        ("keys.data_keys.rewrapped", "cli", {"rewrapped": 3, "to_version": 3}),
        ("keys.master.retired", "cli", {"from_min_version": 1, "min_version": 3}),
    ]


def test_retire_without_rewrap_is_refused_before_anything_changes(data_dir: Path) -> None:
    seal_for(data_dir, ["a"])
    code, out = anju("keys", "rotate", "--data-dir", str(data_dir), "--retire-old")
    assert code == 1
    assert "--rewrap" in out
    keyring = FileKeyProvider.load(data_dir / "keys" / "keyring.json")
    assert (keyring.current_version(), keyring.min_decrypt_version()) == (1, 1)


def test_a_wrong_keyring_is_refused(data_dir: Path, tmp_path: Path) -> None:
    seal_for(data_dir, ["a"])
    key_file = data_dir / "keys" / "keyring.json"
    key_file.unlink()
    FileKeyProvider.create(key_file)
    for command in (["keys", "status"], ["keys", "rotate"]):
        code, out = anju(*command, "--data-dir", str(data_dir))
        assert code == 1
        assert "wrong master key for this database" in out
    assert FileKeyProvider.load(key_file).current_version() == 1  # rotate did nothing


def test_a_key_file_others_can_read_is_refused(data_dir: Path) -> None:
    key_file = data_dir / "keys" / "keyring.json"
    os.chmod(key_file, 0o644)
    code, out = anju("keys", "status", "--data-dir", str(data_dir))
    assert code != 0
    assert "chmod 600" in out


def test_a_missing_key_file_is_explained(data_dir: Path) -> None:
    shutil.move(data_dir / "keys" / "keyring.json", data_dir / "elsewhere.json")
    code, out = anju("keys", "status", "--data-dir", str(data_dir))
    assert code != 0
    assert "missing" in out
