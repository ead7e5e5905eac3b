"""``anju audit verify | checkpoint | public-key | proof | tail`` on the embedded default."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anju.audit import AuditLog
from anju.cli.common import settings_for
from anju.cli.main import app
from anju.kit import merkle
from anju.platform import open_platform

runner = CliRunner()
OPENSSL = shutil.which("openssl")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An upgraded embedded installation with 12 audit entries."""
    target = tmp_path / "data"
    result = runner.invoke(app, ["db", "upgrade", "--data-dir", str(target)])
    assert result.exit_code == 0, result.output

    async def fill() -> None:
        async with open_platform(settings_for(target)) as platform:
            log = AuditLog(platform)
            async with platform.db.transaction() as session:
                for i in range(12):
                    await log.record(
                        session,
                        action="rooms.view",
                        actor="cli",
                        target=f"room:{i}",
                        details={"i": i},
                    )

    asyncio.run(fill())
    return target


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", *args])
    return result.exit_code, result.output


@pytest.mark.req("L17", "F1")
def test_verify_intact_then_tampered(data_dir: Path) -> None:
    code, out = invoke("checkpoint", "--data-dir", str(data_dir))
    assert code == 0, out
    code, out = invoke("verify", "--data-dir", str(data_dir))
    assert code == 0, out
    assert "intact: 12 entries, 1 signed checkpoints verified" in out
    assert len(out.strip().splitlines()) == 1

    with sqlite3.connect(data_dir / "anju.db") as db:
        db.execute("UPDATE audit_entries SET target = 'room:99' WHERE leaf_index = 7")
    code, out = invoke("verify", "--data-dir", str(data_dir))
    assert code == 1
    assert "entry 7 was altered" in out


@pytest.mark.req("L17", "F1")
def test_verify_reports_deleted_entry(data_dir: Path) -> None:
    with sqlite3.connect(data_dir / "anju.db") as db:
        db.execute("DELETE FROM audit_entries WHERE leaf_index = 4")
    code, out = invoke("verify", "--all", "--data-dir", str(data_dir))
    assert code == 1
    assert "entry 4 is missing" in out


@pytest.mark.req("L17", "R16")
def test_verify_reports_bad_checkpoint_signature(data_dir: Path) -> None:
    assert invoke("checkpoint", "--data-dir", str(data_dir))[0] == 0
    with sqlite3.connect(data_dir / "anju.db") as db:
        (note,) = db.execute("SELECT note FROM audit_checkpoints").fetchone()
        tampered = note.replace("anju.local/audit\n12\n", "anju.local/audit\n11\n", 1)
        db.execute("UPDATE audit_checkpoints SET note = ?", (tampered,))
    code, out = invoke("verify", "--data-dir", str(data_dir))
    assert code == 1
    assert "bad signature" in out


@pytest.mark.req("L17", "R16")
def test_verify_with_a_published_public_key_only(data_dir: Path, tmp_path: Path) -> None:
    invoke("checkpoint", "--data-dir", str(data_dir))
    code, pem = invoke("public-key", "--data-dir", str(data_dir))
    assert code == 0
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    key_file = tmp_path / "audit.pem"
    key_file.write_text(pem)
    code, out = invoke("verify", "--public-key", str(key_file), "--data-dir", str(data_dir))
    assert code == 0, out
    # a different key does not verify the checkpoint
    other = tmp_path / "other.pem"
    from anju.kit.crypto import SM2PrivateKey

    other.write_text(SM2PrivateKey.generate().public_key.to_pem())
    code, out = invoke("verify", "--public-key", str(other), "--data-dir", str(data_dir))
    assert code == 1
    assert "bad signature" in out


@pytest.mark.req("L17", "R16")
@pytest.mark.skipif(OPENSSL is None, reason="no openssl command")
def test_checkpoint_note_verifies_with_openssl(data_dir: Path, tmp_path: Path) -> None:
    code, note = invoke("checkpoint", "--data-dir", str(data_dir))
    assert code == 0
    lines = note.split("\n")
    assert lines[0] == "anju.local/audit"
    assert lines[1] == "12"
    assert lines[3] == ""
    assert lines[4].startswith("\u2014 anju.local/audit ")
    # the same commands as docs/audit.md
    (tmp_path / "note.txt").write_text(note)
    (tmp_path / "audit.pem").write_text(invoke("public-key", "--data-dir", str(data_dir))[1])
    script = r"""
set -e
sed '/^$/,$d' note.txt > body.txt
grep '^— ' note.txt | head -n 1 | awk '{print $3}' | base64 -d | tail -c +5 > sig.der
openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678 \
  -pubin -inkey audit.pem -in body.txt -sigfile sig.der
"""
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Signature Verified Successfully" in done.stdout
    assert (tmp_path / "body.txt").read_bytes() == "\n".join(lines[:3]).encode() + b"\n"
    # a changed body does not verify
    (tmp_path / "note.txt").write_text(note.replace("\n12\n", "\n13\n", 1))
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0


@pytest.mark.req("L17", "V5")
def test_proof_prints_a_verifiable_inclusion_proof(data_dir: Path) -> None:
    invoke("checkpoint", "--data-dir", str(data_dir))
    code, out = invoke("proof", "--index", "5", "--data-dir", str(data_dir))
    assert code == 0, out
    proof = json.loads(out)["inclusion"]
    assert proof["tree_size"] == 12
    assert proof["checkpoint"].split("\n")[2] == proof["root"]

    def b(x: str) -> bytes:
        return base64.b64decode(x)

    merkle.verify_inclusion(
        5, 12, b(proof["leaf_hash"]), [b(p) for p in proof["proof"]], b(proof["root"])
    )
    code, out = invoke(
        "proof",
        "--index",
        "2",
        "--size",
        "9",
        "--consistency-from",
        "4",
        "--data-dir",
        str(data_dir),
    )
    assert code == 0, out
    c = json.loads(out)["consistency"]
    merkle.verify_consistency(4, 9, b(c["old_root"]), b(c["new_root"]), [b(p) for p in c["proof"]])
    code, out = invoke("proof", "--index", "40", "--data-dir", str(data_dir))
    assert code == 1
    assert "no entry 40" in out


@pytest.mark.req("L17")
def test_tail_and_help(data_dir: Path) -> None:
    code, out = invoke("tail", "-n", "2", "--data-dir", str(data_dir))
    assert code == 0, out
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["index"] for r in rows] == [10, 11]
    assert rows[1]["details"] == {"i": 11}
    code, out = invoke("--help")
    assert code == 0
    for command in ("verify", "checkpoint", "public-key", "proof", "tail"):
        assert command in out
