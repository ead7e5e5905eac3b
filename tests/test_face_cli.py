"""``anju face verify DOC LIVE``: JSON out, exit 0 match / 1 no match / 2 refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anju.biometrics.repository import BiometricsRepository
from anju.cli.main import app
from anju.face.engine import FaceEngine
from anju.platform import open_platform
from anju.settings import Settings
from tests.support.face_images import FacePhotos

pytestmark = pytest.mark.req("R9", "R10", "L8")

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    result = runner.invoke(app, ["db", "upgrade", "--data-dir", str(path)])
    assert result.exit_code == 0, result.output
    return path


def _photo(tmp_path: Path, face_photos: FacePhotos, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(face_photos[name])
    return str(path)


def verify(data_dir: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = runner.invoke(
        app, ["face", "verify", *args, "--data-dir", str(data_dir), "--device", "desk-2"]
    )
    return result.exit_code, json.loads(result.stdout)


def test_exit_codes_and_json(
    data_dir: Path, tmp_path: Path, face_photos: FacePhotos, face_engine: FaceEngine
) -> None:
    obama, obama3, biden, cat = (
        _photo(tmp_path, face_photos, n)
        for n in ("obama.jpg", "obama3.jpg", "biden.jpg", "chelsea.png")
    )
    code, out = verify(data_dir, obama, obama3)
    assert code == 0
    assert out["decision"] == "match"
    assert out["distance"] < out["threshold"] == 0.6

    code, out = verify(data_dir, obama, biden)
    assert (code, out["decision"]) == (1, "no_match")

    code, out = verify(data_dir, obama, cat)
    assert (code, out["decision"], out["distance"]) == (2, "refused", None)
    (reason,) = out["reasons"]["live"]
    assert reason["code"] == "no_face"
    assert "未检测到人脸" in reason["message"]

    async def captures() -> list[tuple[str, str, str]]:
        async with (
            open_platform(Settings(data_dir=data_dir)) as platform,
            platform.db.transaction() as session,
        ):
            rows = await BiometricsRepository(session).captures()
            return sorted((r.outcome, r.device, r.operator) for r in rows)

    assert asyncio.run(captures()) == [
        ("match", "desk-2", "cli"),
        ("no_match", "desk-2", "cli"),
        ("refused", "desk-2", "cli"),
    ]


def test_an_unreadable_file_is_refused(data_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "face",
            "verify",
            str(tmp_path / "missing.jpg"),
            str(tmp_path / "nope.jpg"),
            "--data-dir",
            str(data_dir),
        ],
    )
    assert result.exit_code == 2
    assert "cannot read" in result.output
