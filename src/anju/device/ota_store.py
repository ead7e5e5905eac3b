"""A device's firmware storage: the download in progress and two image slots (A/B).

Everything is sealed with a key from the secure element and written power-loss-safe (L13):

* ``ota-job.a|b`` — a :class:`~anju.device.storage.SlotStore` record of the update in progress
  (the signed manifest, how many chunks are stored, the step reached, a final report not yet
  handed to the broker);
* ``staging/NNNNN.chunk`` — each received chunk, sealed and bound to its index and to the
  manifest (SM3 of its bytes), written by an atomic replace;
* ``slot-a.img`` / ``slot-b.img`` — installed images, sealed and bound to their slot and manifest;
* ``ota-active.a|b`` — which slot runs, its version and image SM3, and the one before it.

Installing writes the image to the slot not running, reads it back and checks its SM3, and only
then switches ``ota-active`` — one atomic record write. A power cut before the switch leaves the
old image running (the staged chunks are still there); after it, the new one. At start-up the
active image is checked again and, if it no longer verifies, the previous one runs (rollback).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anju.device.storage import Sealer, SlotStore, StorageError, replace_durably
from anju.errors import IntegrityError
from anju.kit.crypto import sm3
from anju.protocol.firmware import CHUNK_BYTES, MAX_IMAGE_BYTES, b64decode, b64encode

_INDEX = struct.Struct(">I")
CHUNK_CONTEXT = b"anju/ota-chunk/v1"
SLOT_CONTEXT = b"anju/ota-slot/v1"
JOB_CONTEXT = b"anju/ota-job/v1"
ACTIVE_CONTEXT = b"anju/ota-active/v1"
SLOTS = ("a", "b")


@dataclass
class Job:
    """An accepted update: the signed manifest as offered, and how far it got."""

    package_id: str
    manifest: bytes
    certificate: bytes
    signature: bytes
    received: int = 0  # chunks 0 … received-1 are stored
    step: str = "downloading"  # "downloading", "verified" or "updating"
    report: tuple[str, str | None] | None = None  # a final (state, code) not yet sent

    @property
    def id(self) -> bytes:
        """SM3 of the manifest bytes: names this signed release."""
        return sm3(self.manifest)

    def to_json(self) -> dict[str, Any]:
        return {
            "pkg": self.package_id,
            "manifest": b64encode(self.manifest),
            "cert": b64encode(self.certificate),
            "sig": b64encode(self.signature),
            "received": self.received,
            "step": self.step,
            "report": list(self.report) if self.report is not None else None,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Job:
        report = doc["report"]
        return cls(
            package_id=str(doc["pkg"]),
            manifest=b64decode(doc["manifest"], max_bytes=4096),
            certificate=b64decode(doc["cert"], max_bytes=4096),
            signature=b64decode(doc["sig"], max_bytes=4096),
            received=int(doc["received"]),
            step=str(doc["step"]),
            report=(str(report[0]), report[1]) if report is not None else None,
        )


@dataclass(frozen=True)
class Active:
    """The image that runs: its slot, version and SM3, and the one that ran before."""

    slot: str
    version: str
    sm3: bytes
    previous: Active | None = field(default=None, compare=False)  # one step of history

    def to_json(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "version": self.version,
            "sm3": self.sm3.hex(),
            "previous": self.previous.to_json() if self.previous is not None else None,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> Active | None:
        if doc is None:
            return None
        return cls(
            slot=str(doc["slot"]),
            version=str(doc["version"]),
            sm3=bytes.fromhex(doc["sm3"]),
            previous=None,  # one step of history is enough for a rollback
        )


class OtaStore:
    """The files of one device's firmware updates (see module docstring)."""

    def __init__(self, directory: Path, sealer: Sealer, *, context: bytes) -> None:
        self.directory = directory
        self._sealer = sealer
        self._context = context
        self._staging = directory / "staging"
        self._job = SlotStore(directory, "ota-job", sealer, context=JOB_CONTEXT + context)
        self._active = SlotStore(directory, "ota-active", sealer, context=ACTIVE_CONTEXT + context)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    # --- the job ---------------------------------------------------------------------------
    def read_job(self) -> Job | None:
        raw = self._job.read()
        doc = json.loads(raw) if raw is not None else None
        return Job.from_json(doc) if doc else None

    def write_job(self, job: Job) -> None:
        self._job.write(json.dumps(job.to_json(), sort_keys=True).encode())

    def clear_job(self) -> None:
        """Forget the job (its record says "none") and delete its chunks."""
        self._job.write(b"{}")
        self.drop_chunks()

    def drop_chunks(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self._staging)

    def _chunk_aad(self, job: Job, index: int) -> bytes:
        return CHUNK_CONTEXT + self._context + job.id + _INDEX.pack(index)

    def put_chunk(self, job: Job, index: int, data: bytes) -> None:
        """Store chunk ``index`` durably (atomic replace; a torn write leaves no chunk)."""
        self._staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        sealed = self._sealer.seal(data, self._chunk_aad(job, index))
        try:
            replace_durably(self._staging / f"{index:05d}.chunk", sealed)
        except OSError as exc:
            raise StorageError("storage_io", "chunk write failed") from exc

    def image(self, job: Job, chunks: int) -> bytes:
        """The staged image, every chunk authenticated (StorageError when one does not)."""
        parts = []
        for index in range(chunks):
            try:
                sealed = (self._staging / f"{index:05d}.chunk").read_bytes()
                parts.append(self._sealer.open(sealed, self._chunk_aad(job, index)))
            except (OSError, IntegrityError):
                raise StorageError(
                    "storage_corrupt", f"staged chunk {index} is missing or damaged"
                ) from None
        image = b"".join(parts)
        if len(image) > MAX_IMAGE_BYTES or any(len(p) > CHUNK_BYTES for p in parts):
            raise StorageError("storage_corrupt", "staged image is larger than allowed")
        return image

    # --- the slots -------------------------------------------------------------------------
    def _slot_path(self, slot: str) -> Path:
        return self.directory / f"slot-{slot}.img"

    def _slot_aad(self, slot: str, digest: bytes) -> bytes:
        return SLOT_CONTEXT + self._context + slot.encode() + digest

    def _read_slot(self, slot: str, digest: bytes) -> bytes | None:
        """The image in ``slot`` if it authenticates and has SM3 ``digest``; None otherwise."""
        try:
            sealed = self._slot_path(slot).read_bytes()
            image = self._sealer.open(sealed, self._slot_aad(slot, digest))
        except (OSError, IntegrityError):
            return None
        return image if sm3(image) == digest else None

    def active(self) -> Active | None:
        """The running image as recorded (None: the factory image)."""
        raw = self._active.read()
        doc = json.loads(raw) if raw is not None else None
        return Active.from_json(doc)

    def boot(self) -> Active | None:
        """What runs after a power-up: the active image if it still verifies, else the one
        before it (recorded as active again), else the factory image (None)."""
        raw = self._active.read()
        doc = json.loads(raw) if raw is not None else None
        current = Active.from_json(doc)
        if current is None or self._read_slot(current.slot, current.sm3) is not None:
            return current
        previous = Active.from_json(doc["previous"] if doc else None)
        if previous is not None and self._read_slot(previous.slot, previous.sm3) is None:
            previous = None
        self._active.write(
            json.dumps(previous.to_json() if previous else None, sort_keys=True).encode()
        )
        return previous

    def install(self, image: bytes, version: str) -> Active:
        """Write ``image`` to the slot not running, check it, then switch to it (atomically)."""
        current = self.active()
        slot = "b" if current is not None and current.slot == "a" else "a"
        digest = sm3(image)
        try:
            replace_durably(
                self._slot_path(slot), self._sealer.seal(image, self._slot_aad(slot, digest))
            )
        except OSError as exc:
            raise StorageError("storage_io", "slot write failed") from exc
        if self._read_slot(slot, digest) != image:
            raise StorageError("storage_corrupt", "the written image does not read back")
        installed = Active(slot, version, digest, previous=current)
        self._active.write(json.dumps(installed.to_json(), sort_keys=True).encode())
        return installed
