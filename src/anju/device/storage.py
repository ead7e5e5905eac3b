"""Power-loss-safe device storage: sealed A/B-slot records and a bounded event buffer.

Both survive a power cut at any point of a write: a reader gets the previous good state, the
new one, or a clear :class:`StorageError` — never corrupt data (L13). Every byte read back is
authenticated (SM4-GCM) before use. Byte layouts and the crash-safety argument are in
docs/secure-element.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from anju.errors import AnjuError, IntegrityError
from anju.kit.crypto import (
    SM4_GCM_NONCE_BYTES,
    SM4_GCM_TAG_BYTES,
    random_bytes,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

#: Stable codes of :class:`StorageError`.
CODES: dict[str, str] = {
    "storage_corrupt": "record files exist but none authenticates (tampered, wrong key, torn)",
    "storage_io": "the operating system refused a read or write; the previous state is intact",
    "record_too_large": "record longer than the store's limit",
    "event_unknown_id": "mark_uploaded named an id that was never assigned",
}


class StorageError(AnjuError):
    """A storage operation failed; ``code`` says why (one of :data:`CODES`)."""

    status = 500

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown storage error code {code!r}")
        super().__init__(message, details=details)
        self.code = code  # type: ignore[misc]


class Sealer(Protocol):
    """Authenticated encryption for storage; ``open`` raises IntegrityError on any mismatch."""

    @property
    def overhead(self) -> int: ...

    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, sealed: bytes, aad: bytes) -> bytes: ...


class Sm4GcmSealer:
    """SM4-GCM with a fresh random 96-bit nonce per seal: ``nonce ‖ ciphertext ‖ tag``."""

    __slots__ = ("_key",)
    overhead = SM4_GCM_NONCE_BYTES + SM4_GCM_TAG_BYTES

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise ValueError("SM4 key must be 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "Sm4GcmSealer(<key hidden>)"

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext`` bound to ``aad``."""
        # Random, not generation-derived: a write that crashed may be redone with the same
        # generation and different content, which must never reuse a GCM nonce.
        nonce = random_bytes(SM4_GCM_NONCE_BYTES)
        return nonce + sm4_gcm_encrypt(self._key, nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        """Decrypt ``sealed``; IntegrityError unless it authenticates under ``aad``."""
        if len(sealed) < self.overhead:
            raise IntegrityError("sealed data is too short")
        nonce, body = sealed[:SM4_GCM_NONCE_BYTES], sealed[SM4_GCM_NONCE_BYTES:]
        return sm4_gcm_decrypt(self._key, nonce, body, aad)


# --- low-level durable file operations --------------------------------------------------------


def fsync_directory(directory: Path) -> None:
    """Make a directory entry change (create, rename, unlink) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_durably(path: Path, data: bytes) -> None:
    """Overwrite ``path`` in place: truncate → write → fsync → directory fsync (mode 0600).

    Not atomic on its own; callers only ever overwrite a copy they can lose (the older slot).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, data)  # os.write is unbuffered: nothing to flush before fsync
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_directory(path.parent)


def replace_durably(path: Path, data: bytes) -> None:
    """Atomically replace ``path``: write a temporary file, fsync, rename, directory fsync."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_directory(path.parent)


def shred(path: Path) -> bool:
    """Overwrite a file with random bytes, fsync and unlink it; True if it existed.

    Best effort on a journalling or copy-on-write file system or flash with wear levelling:
    old blocks may survive elsewhere (see docs/secure-element.md).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    fd = os.open(path, os.O_WRONLY)
    try:
        _write_all(fd, random_bytes(size))
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()
    fsync_directory(path.parent)
    return True


# --- A/B slot record store --------------------------------------------------------------------

RECORD_MAGIC = b"ASR1"
RECORD_FORMAT = 1
#: magic(4) ‖ format(u8) ‖ flags(u8, 0) ‖ reserved(u16, 0) ‖ generation(u64) ‖ length(u32)
RECORD_HEADER = struct.Struct(">4sBBHQI")


@dataclass(frozen=True)
class _Slot:
    index: int
    generation: int
    payload: bytes


class SlotStore:
    """One record kept in two files ``<name>.a``/``<name>.b``; a write replaces the older one.

    A record is ``header ‖ sealed(payload, aad = header ‖ context)``. The reader takes the
    newest slot that authenticates and falls back to the other; ``context`` binds the record
    to its owner (a record moved to another store with another context does not open).
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        sealer: Sealer,
        *,
        context: bytes,
        max_payload: int = 1 << 20,
    ) -> None:
        self.directory = directory
        self.paths = (directory / f"{name}.a", directory / f"{name}.b")
        self._sealer = sealer
        self._context = context
        self._max_payload = max_payload
        self._current: int | None = None  # slot index holding the newest good record
        self._generation = 0

    @property
    def generation(self) -> int:
        """Generation of the newest good record seen (0 before the first write)."""
        return self._generation

    def exists(self) -> bool:
        """True when at least one slot file is present (good or not)."""
        return any(path.exists() for path in self.paths)

    def _parse(self, index: int) -> _Slot | None:
        try:
            data = self.paths[index].read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError("storage_io", f"cannot read {self.paths[index].name}") from exc
        if len(data) < RECORD_HEADER.size:
            return None
        header = data[: RECORD_HEADER.size]
        magic, fmt, flags, reserved, generation, length = RECORD_HEADER.unpack(header)
        if (
            magic != RECORD_MAGIC
            or fmt != RECORD_FORMAT
            or flags
            or reserved
            or generation == 0
            or length != len(data) - RECORD_HEADER.size  # truncated, or a garbage tail
        ):
            return None
        try:
            payload = self._sealer.open(data[RECORD_HEADER.size :], header + self._context)
        except IntegrityError:
            return None
        return _Slot(index, generation, payload)

    def read(self) -> bytes | None:
        """The newest record that authenticates; None when nothing was ever (completely)
        written. Raises StorageError("storage_corrupt") when both slots exist and none is good.
        """
        good = [slot for slot in (self._parse(0), self._parse(1)) if slot is not None]
        if not good:
            self._current, self._generation = None, 0
            # Slot b is only created after a write to slot a completed, so "a bad, b absent"
            # is a first write that never finished: nothing was ever stored.
            if self.paths[1].exists():
                raise StorageError(
                    "storage_corrupt",
                    "存储记录无法通过校验 / no stored record authenticates (tampered or wrong key)",
                    details={"record": self.paths[0].stem},
                )
            return None
        newest = max(good, key=lambda slot: (slot.generation, -slot.index))
        self._current, self._generation = newest.index, newest.generation
        return newest.payload

    def write(self, payload: bytes) -> int:
        """Durably store ``payload`` in the slot not holding the newest good record.

        Returns the new generation. On StorageError("storage_io") the previous record is
        intact and the new one may or may not have landed — never a mix of the two.
        """
        if len(payload) > self._max_payload:
            raise StorageError("record_too_large", "record exceeds the store's limit")
        generation = self._write_slot(payload)
        if not self.paths[1 - self._current_index()].exists():
            # First record: fill the other slot too, so from now on there is always a fallback
            # (and a lone damaged slot a can only mean a first write that never finished).
            generation = self._write_slot(payload)
        return generation

    def _current_index(self) -> int:
        assert self._current is not None
        return self._current

    def _write_slot(self, payload: bytes) -> int:
        target = 0 if self._current is None else 1 - self._current
        generation = self._generation + 1
        length = len(payload) + self._sealer.overhead
        header = RECORD_HEADER.pack(RECORD_MAGIC, RECORD_FORMAT, 0, 0, generation, length)
        sealed = self._sealer.seal(payload, header + self._context)
        if len(sealed) != length:
            raise ValueError("sealer overhead does not match its output")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            write_durably(self.paths[target], header + sealed)
        except OSError as exc:
            # The next attempt targets the same (older) slot again: the good one stays intact.
            raise StorageError("storage_io", "write failed; previous record intact") from exc
        self._current, self._generation = target, generation
        return generation

    def destroy(self) -> None:
        """Overwrite and delete both slot files."""
        for path in self.paths:
            shred(path)
        self._current, self._generation = None, 0


# --- bounded event buffer ---------------------------------------------------------------------

EVENT_FRAME = struct.Struct(">QI")  # event id (u64) ‖ sealed length (u32)
_ID_RESERVE_BLOCK = 64


@dataclass(frozen=True)
class Event:
    """One buffered event: its id (monotonic, never reused) and the record bytes."""

    id: int
    record: bytes


@dataclass(frozen=True)
class EventBufferStats:
    """Counters of an event buffer (for device state reports)."""

    pending: int
    last_id: int
    cursor: int  # every id <= cursor is uploaded or dropped
    dropped: int
    discarded_bytes: int


class EventBuffer:
    """A bounded, persisted, append-only queue of sealed records with an upload cursor.

    Files: ``events.log`` (frames ``id(u64) ‖ len(u32) ‖ sealed``, appended and fsynced) and
    the ``events-meta`` slot store (cursor, drop counter, id reservation). When more than
    ``capacity`` records are pending the oldest is dropped and counted. Ids are never reused,
    even after a torn or corrupted log tail, so the platform can deduplicate by id.
    """

    LOG = "events.log"

    def __init__(
        self,
        directory: Path,
        sealer: Sealer,
        *,
        capacity: int = 512,
        max_record: int = 4096,
        context: bytes = b"",
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.directory = directory
        self.capacity = capacity
        self.max_record = max_record
        self._sealer = sealer
        self._context = context
        self._log = directory / self.LOG
        self._meta = SlotStore(
            directory, "events-meta", sealer, context=b"anju/event-meta/v1" + context
        )
        self._pending: deque[tuple[Event, bytes]] = deque()  # (event, its frame bytes)
        self._floor = 0  # every id <= floor is uploaded or dropped
        self._dropped = 0
        self._reserved = 0  # ids up to here may have been handed out
        self._next_id = 1
        self._size = 0  # bytes of good frames in the log
        self._frames_in_log = 0
        self._discarded = 0
        self._broken = False
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._load()

    # -- loading ------------------------------------------------------------------------------
    def _aad(self, event_id: int, length: int) -> bytes:
        return b"anju/event/v1" + self._context + EVENT_FRAME.pack(event_id, length)

    def _scan(self, data: bytes) -> Iterator[tuple[Event, bytes]]:
        offset, previous = 0, 0
        limit = self.max_record + self._sealer.overhead
        while offset + EVENT_FRAME.size <= len(data):
            event_id, length = EVENT_FRAME.unpack_from(data, offset)
            end = offset + EVENT_FRAME.size + length
            if event_id <= previous or length > limit or end > len(data):
                return
            try:
                record = self._sealer.open(
                    data[offset + EVENT_FRAME.size : end], self._aad(event_id, length)
                )
            except IntegrityError:
                return
            yield Event(event_id, record), data[offset:end]
            offset, previous = end, event_id

    def _load(self) -> None:
        meta = self._meta.read()
        if meta is not None:
            fields = json.loads(meta)
            self._floor, self._dropped = int(fields["floor"]), int(fields["dropped"])
            self._reserved = int(fields["reserved"])
        with contextlib.suppress(FileNotFoundError):
            (self.directory / (self.LOG + ".tmp")).unlink()  # an unfinished compaction
        try:
            data = self._log.read_bytes()
        except FileNotFoundError:
            data = b""
        frames = list(self._scan(data))
        self._size = sum(len(frame) for _, frame in frames)
        self._frames_in_log = len(frames)
        last = max(frames[-1][0].id if frames else 0, self._floor)
        if self._size < len(data):
            # A torn append (or corruption): cut it off so later appends follow good frames.
            self._discarded = len(data) - self._size
            os.truncate(self._log, self._size)
            fd = os.open(self._log, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            last = max(last, self._reserved)  # lost frames may have used ids up to here
        self._next_id = last + 1
        self._pending.extend(item for item in frames if item[0].id > self._floor)
        self._enforce_capacity()

    # -- helpers ------------------------------------------------------------------------------
    def _check(self) -> None:
        if self._broken:
            raise StorageError("storage_io", "event log in unknown state after an I/O error")

    def _enforce_capacity(self) -> None:
        while len(self._pending) > self.capacity:
            event, _ = self._pending.popleft()
            self._floor = event.id
            self._dropped += 1

    def _save_meta(self) -> None:
        fields = {"floor": self._floor, "dropped": self._dropped, "reserved": self._reserved}
        self._meta.write(json.dumps(fields, sort_keys=True).encode())

    def _compact(self) -> None:
        """Rewrite the log with only pending frames (meta first, so no id is ever reused)."""
        self._save_meta()
        frames = b"".join(frame for _, frame in self._pending)
        try:
            replace_durably(self._log, frames)
        except OSError as exc:
            raise StorageError("storage_io", "log compaction failed; log intact") from exc
        self._size, self._frames_in_log = len(frames), len(self._pending)

    # -- API ----------------------------------------------------------------------------------
    def append(self, record: bytes) -> int:
        """Durably append ``record``; returns its id once it is on stable storage."""
        self._check()
        if len(record) > self.max_record:
            raise StorageError("record_too_large", f"event record over {self.max_record} bytes")
        event_id = self._next_id
        if event_id > self._reserved:
            self._reserved = event_id + _ID_RESERVE_BLOCK - 1
            self._save_meta()
        sealed = self._sealer.seal(record, self._aad(event_id, len(record) + self._sealer.overhead))
        frame = EVENT_FRAME.pack(event_id, len(sealed)) + sealed
        try:
            fd = os.open(self._log, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.ftruncate(fd, self._size)  # drop any partial frame of a failed attempt
                os.lseek(fd, self._size, os.SEEK_SET)
                _write_all(fd, frame)
                os.fsync(fd)
            finally:
                os.close(fd)
            if self._size == 0:
                fsync_directory(self.directory)
        except OSError as exc:
            try:
                os.truncate(self._log, self._size)
            except OSError:
                self._broken = True
            raise StorageError("storage_io", "event append failed; not stored") from exc
        self._next_id = event_id + 1
        self._size += len(frame)
        self._frames_in_log += 1
        self._pending.append((Event(event_id, record), frame))
        self._enforce_capacity()
        if self._frames_in_log >= 2 * self.capacity:
            self._compact()
        return event_id

    def pending(self, limit: int = 100) -> list[Event]:
        """Up to ``limit`` oldest records not yet uploaded, in id order."""
        self._check()
        return [event for event, _ in list(self._pending)[:limit]]

    def mark_uploaded(self, up_to_id: int) -> None:
        """Record that every event with id <= ``up_to_id`` reached the platform (durable)."""
        self._check()
        if up_to_id >= self._next_id:
            raise StorageError("event_unknown_id", f"event id {up_to_id} was never assigned")
        if up_to_id <= self._floor:
            return
        self._floor = up_to_id
        while self._pending and self._pending[0][0].id <= up_to_id:
            self._pending.popleft()
        if self._frames_in_log > self.capacity and len(self._pending) * 2 < self._frames_in_log:
            self._compact()
        else:
            self._save_meta()

    def stats(self) -> EventBufferStats:
        """Counters: pending, last id, cursor, dropped (never uploaded), discarded log bytes."""
        return EventBufferStats(
            pending=len(self._pending),
            last_id=self._next_id - 1,
            cursor=self._floor,
            dropped=self._dropped,
            discarded_bytes=self._discarded,
        )
