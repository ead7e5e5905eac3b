"""``anju firmware sign | certify-signer | upload | list | rollout …`` against the test's database
(SQLite and PostgreSQL), including offline signing with a vendor key the CA certified."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from anju.cli.main import app
from anju.devices.ca import ca_public_key
from anju.platform import Platform
from anju.protocol.firmware import Package
from anju.settings import Settings
from tests.support.firmware import image_bytes, registered_fleet
from tests.support.services import require_service

pytestmark = pytest.mark.req("R11", "L14", "L16")

runner = CliRunner()
OPENSSL = shutil.which("openssl")


async def invoke(settings: Settings, *args: str) -> Result:
    """Run ``anju firmware …`` on the test's database (in a thread: the CLI has its own loop)."""
    env = {"ANJU_DATABASE_URL": settings.resolved_database_url}
    argv = ["firmware", *args, "--data-dir", str(settings.data_dir)]
    return await asyncio.to_thread(runner.invoke, app, argv, env=env)


async def offline_sign(keys: Path, product: str, out: Path) -> Result:
    """``anju firmware sign`` on a machine without the platform: key, certificate, image."""
    argv = ["firmware", "sign", str(keys / "img"), "--product", product, "--version", "0.3.0"]
    argv += ["--out", str(out), "--signer-key", str(keys / "signer.pem")]
    argv += ["--signer-cert", str(keys / "signer.cert"), "--data-dir", str(keys / "no-platform")]
    return await asyncio.to_thread(runner.invoke, app, argv)


async def test_sign_upload_list_and_run_a_rollout_from_the_cli(
    platform: Platform, settings: Settings, tmp_path: Path
) -> None:
    org_id, fleet = await registered_fleet(platform, 2)
    image = tmp_path / "lock.bin"
    image.write_bytes(image_bytes(20_000))
    pkg = tmp_path / "lock-0.2.0.afw"
    sign = ("sign", str(image), "--product", "lock-x1", "--version", "0.2.0", "--out", str(pkg))
    signed = await invoke(settings, *sign)
    assert signed.exit_code == 0, signed.output
    # The CLI runs on the system clock (the fixture's platform on a fixed one).
    manifest = Package.decode(pkg.read_bytes()).verify(
        ca_public_key(platform.keys), now=int(time.time())
    )
    assert (manifest.product, manifest.version, manifest.size) == ("lock-x1", "0.2.0", 20_000)
    again = await invoke(settings, *sign)
    assert again.exit_code == 1  # never overwrites a file

    uploaded = await invoke(settings, "upload", str(pkg))
    assert uploaded.exit_code == 0, uploaded.output
    package_id = uploaded.output.split("\t")[0]
    tampered = tmp_path / "tampered.afw"
    data = bytearray(pkg.read_bytes())
    data[-3] ^= 0x10
    tampered.write_bytes(bytes(data))
    refused = await invoke(settings, "upload", str(tampered))
    assert refused.exit_code == 1
    assert "firmware_refused" in refused.output
    listed = await invoke(settings, "list")
    assert package_id in listed.output
    assert "0.2.0" in listed.output

    created = await invoke(
        settings,
        "rollout",
        "create",
        "--package",
        package_id,
        "--org",
        org_id,
        "--stages",
        "50,100",
    )
    assert created.exit_code == 0, created.output
    rollout = json.loads(created.output)
    assert (rollout["status"], rollout["devices"]) == ("draft", 2)
    rid = rollout["id"]
    for action, status in (("start", "running"), ("pause", "paused"), ("resume", "running")):
        result = await invoke(settings, "rollout", action, rid)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["status"] == status
    shown = await invoke(settings, "rollout", "status", rid, "--devices")
    detail = json.loads(shown.output)
    assert detail["states"] == {"sent": 1, "pending": 1}
    assert sorted(d["device_id"] for d in detail["device_states"]) == sorted(fleet)
    cancelled = await invoke(settings, "rollout", "cancel", rid)
    assert json.loads(cancelled.output)["status"] == "cancelled"
    refused = await invoke(settings, "rollout", "start", rid)
    assert refused.exit_code == 1
    assert "illegal_rollout_transition" in refused.output
    bad = await invoke(settings, "rollout", "create", "--package", package_id, "--stages", "a,b")
    assert bad.exit_code == 1


async def test_offline_signing_with_a_certified_vendor_key(
    platform: Platform, settings: Settings, tmp_path: Path
) -> None:
    await registered_fleet(platform, 1)
    # The key made as docs/firmware.md says, with the openssl command line.
    require_service("openssl binary", OPENSSL is not None)
    assert OPENSSL is not None
    for argv in (
        ["genpkey", "-algorithm", "SM2", "-out", str(tmp_path / "signer.pem")],
        [
            "pkey",
            "-in",
            str(tmp_path / "signer.pem"),
            "-pubout",
            "-out",
            str(tmp_path / "signer.pub.pem"),
        ],
    ):
        await asyncio.to_thread(subprocess.run, [OPENSSL, *argv], check=True)
    certified = await invoke(
        settings,
        "certify-signer",
        "--public-key",
        str(tmp_path / "signer.pub.pem"),
        "--name",
        "release.vendor.test",
        "--product",
        "lock-x1",
        "--out",
        str(tmp_path / "signer.cert"),
    )
    assert certified.exit_code == 0, certified.output
    (tmp_path / "img").write_bytes(image_bytes(5000))
    # The offline machine needs only the key, its certificate and the image.
    offline = await offline_sign(tmp_path, "lock-x1", tmp_path / "vendor.afw")
    assert offline.exit_code == 0, offline.output
    assert not (tmp_path / "no-platform").exists()
    assert (await invoke(settings, "upload", str(tmp_path / "vendor.afw"))).exit_code == 0
    # The vendor certificate is for lock-x1 only: a package for another product is refused.
    other = await offline_sign(tmp_path, "lock-y2", tmp_path / "other.afw")
    assert other.exit_code == 0, other.output  # signing itself does not check the scope …
    uploaded = await invoke(settings, "upload", str(tmp_path / "other.afw"))
    assert uploaded.exit_code == 1  # … verification does
    assert "fw_bad_signer" in uploaded.output
