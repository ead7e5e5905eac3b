"""The device's firmware storage and update agent without a network: sealed staging bound to its
place, A/B install with a check before the switch, rollback at boot, and the power cut between
the switch and the report."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from anju.device.ota import OtaAgent, OtaOptions
from anju.device.ota_store import Job, OtaStore
from anju.device.storage import Sm4GcmSealer, StorageError
from anju.kit.crypto import SM2PrivateKey, random_bytes, sm3
from anju.protocol.firmware import (
    CHUNK_BYTES,
    Offer,
    b64encode,
    chunk_of,
    sign_package,
)
from tests.support.device_harness import wait_until
from tests.support.firmware import vector_signer_cert
from tests.vectors import protocol as v

pytestmark = pytest.mark.req("L13", "L16", "R19")

CA = SM2PrivateKey(v.CA_PRIVATE)
SIGNER = SM2PrivateKey(v.FIRMWARE_PRIVATE)
NOW = v.TD_MS // 1000
CONTEXT = b"test-device"


def store(path: Path, key: bytes) -> OtaStore:
    return OtaStore(path, Sm4GcmSealer(key), context=CONTEXT)


def offer(image: bytes, version: str, package_id: str = "pkg-1") -> Offer:
    cert = vector_signer_cert()
    package = sign_package(
        image,
        product=v.PRODUCT,
        version=version,
        created_ms=v.TD_MS,
        signer=SIGNER,
        certificate=cert,
    )
    return Offer(package_id, package.signed)


class Uplink:
    """The connection as the agent sees it: records what the lock would send."""

    def __init__(self) -> None:
        self.connected = True
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def flush(self) -> None:
        return None

    def states(self) -> list[tuple[str, str | None]]:
        return [(m["state"], m["code"]) for m in self.sent if m["t"] == "fw_state"]


def agent(s: OtaStore, uplink: Uplink) -> OtaAgent:
    return OtaAgent(
        s,
        uplink,
        product=v.PRODUCT,
        factory_version="0.1.0",
        ca_public_key=CA.public_key,
        now_s=lambda: NOW,
        options=OtaOptions(chunk_timeout_s=1.0),
    )


def test_install_switches_only_after_the_image_reads_back_and_boot_rolls_back(
    tmp_path: Path,
) -> None:
    key = random_bytes(16)
    s = store(tmp_path, key)
    assert s.boot() is None  # the factory image
    one, two = b"image one" * 100, b"image two" * 100
    first = s.install(one, "1.0.0")
    second = s.install(two, "2.0.0")
    assert (first.slot, second.slot) == ("a", "b")  # A/B: the running slot is never written
    assert store(tmp_path, key).boot() == second
    # The active image is damaged on flash: at the next power-up the previous one runs.
    damaged = bytearray((tmp_path / "slot-b.img").read_bytes())
    damaged[40] ^= 0x01
    (tmp_path / "slot-b.img").write_bytes(bytes(damaged))
    booted = store(tmp_path, key).boot()
    assert booted is not None
    assert (booted.version, booted.sm3) == ("1.0.0", sm3(one))
    assert store(tmp_path, key).active() == booted  # recorded: the rollback is durable
    # Both gone bad: the factory image runs.
    (tmp_path / "slot-a.img").write_bytes(b"\x00" * 100)
    assert store(tmp_path, key).boot() is None
    # A sealed image is bound to its slot: copied into the other slot, it does not open.
    s = store(tmp_path, key)
    installed = s.install(one, "3.0.0")
    other = "b" if installed.slot == "a" else "a"
    (tmp_path / f"slot-{other}.img").write_bytes(
        (tmp_path / f"slot-{installed.slot}.img").read_bytes()
    )
    assert s._read_slot(other, installed.sm3) is None


def test_staged_chunks_are_bound_to_their_index_and_release(tmp_path: Path) -> None:
    s = store(tmp_path, random_bytes(16))
    o = offer(b"x" * (2 * CHUNK_BYTES), "1.0.0")
    job = Job("pkg-1", o.signed.manifest_bytes, o.signed.certificate_bytes, o.signed.signature)
    s.put_chunk(job, 0, b"a" * CHUNK_BYTES)
    s.put_chunk(job, 1, b"b" * CHUNK_BYTES)
    assert s.image(job, 2) == b"a" * CHUNK_BYTES + b"b" * CHUNK_BYTES
    staging = tmp_path / "staging"
    a, b = (staging / "00000.chunk").read_bytes(), (staging / "00001.chunk").read_bytes()
    (staging / "00000.chunk").write_bytes(b)  # swapped on flash
    (staging / "00001.chunk").write_bytes(a)
    with pytest.raises(StorageError) as exc:
        s.image(job, 2)
    assert exc.value.code == "storage_corrupt"
    other = Job("pkg-2", o.signed.manifest_bytes + b" ", o.signed.certificate_bytes, b"")
    (staging / "00000.chunk").write_bytes(a)
    with pytest.raises(StorageError):
        s.image(other, 1)  # another release's job cannot read these chunks


async def test_an_offer_is_downloaded_checked_installed_and_reported(tmp_path: Path) -> None:
    image = random_bytes(CHUNK_BYTES + 100)
    uplink = Uplink()
    a = agent(store(tmp_path, random_bytes(16)), uplink)
    worker = asyncio.create_task(a.run())
    o = offer(image, "0.2.0")
    assert a.offer(o.to_args()) == (True, None)
    for index in range(2):
        await wait_until(lambda index=index: any(m.get("i") == index for m in uplink.sent), 5)
        a.on_chunk(
            {
                "t": "fw_chunk",
                "pkg": "pkg-1",
                "i": index,
                "data": b64encode(chunk_of(image, index)),
                "code": None,
            }
        )
    await wait_until(lambda: a.job is None, 5)
    worker.cancel()
    assert a.running_version == "0.2.0"
    assert uplink.states() == [
        ("downloading", None),
        ("verified", None),
        ("updating", None),
        ("updated", None),
    ]
    # The same release offered again (the platform retried): already installed.
    assert a.offer(o.to_args()) == (True, None)
    assert uplink.states()[-1] == ("updated", None)
    # An older one is refused without a job.
    assert a.offer(offer(image, "0.1.5", "pkg-2").to_args()) == (False, "fw_downgrade")
    assert uplink.states()[-1] == ("failed", "fw_downgrade")
    assert a.job is None


async def test_a_power_cut_after_the_switch_reports_updated_once_power_is_back(
    tmp_path: Path,
) -> None:
    key = random_bytes(16)
    image = random_bytes(300)
    o = offer(image, "0.2.0")
    s = store(tmp_path, key)
    job = Job("pkg-1", o.signed.manifest_bytes, o.signed.certificate_bytes, o.signed.signature)
    job.step = "updating"
    s.put_chunk(job, 0, image)
    job.received = 1
    s.write_job(job)
    s.install(image, "0.2.0")  # switched; then the power went
    uplink = Uplink()
    a = agent(store(tmp_path, key), uplink)
    assert a.running_version == "0.2.0"
    worker = asyncio.create_task(a.run())
    a.on_session()
    await wait_until(lambda: a.job is None, 5)
    worker.cancel()
    assert uplink.states()[-1] == ("updated", None)
    assert store(tmp_path, key).read_job() is None
    assert not (tmp_path / "staging").exists()
