"""Power-loss-safe device storage (L13): a crash at any step of a write yields the previous good
state (or the new one once it fully landed) — never corrupt data; everything is authenticated
before use. Power loss is simulated by killing the write at each system call and by damaging
the file being written the way a torn write can (truncation, zeroed tail, garbage, bit flip)."""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anju.device import EventBuffer, SlotStore, Sm4GcmSealer, StorageError
from anju.kit.crypto import sm4_gcm_decrypt
from tests.support.power_loss import PowerLoss, damage, power_cut_at

KEY = bytes(range(16))
CONTEXT = b"test/record/v1"


def store(directory: Path, key: bytes = KEY, context: bytes = CONTEXT) -> SlotStore:
    return SlotStore(directory, "rec", Sm4GcmSealer(key), context=context)


def slots_by_age(directory: Path) -> tuple[Path, Path]:
    """(newest, older) slot files by the generation in their headers."""
    paths = [directory / "rec.a", directory / "rec.b"]
    paths.sort(key=lambda p: struct.unpack(">Q", p.read_bytes()[8:16])[0], reverse=True)
    return paths[0], paths[1]


def fresh_read(directory: Path) -> bytes | None:
    """What a rebooted device reads."""
    return store(directory).read()


# --- A/B slot store ---------------------------------------------------------------------------


@pytest.mark.req("L13")
def test_slots_alternate_and_newest_wins(tmp_path: Path) -> None:
    s = store(tmp_path)
    assert s.read() is None
    assert not s.exists()
    assert s.write(b"one") == 2  # the first record fills both slots (generations 1 and 2)
    assert {p.read_bytes()[8:16] for p in slots_by_age(tmp_path)} == {
        struct.pack(">Q", 1),
        struct.pack(">Q", 2),
    }
    assert s.write(b"two") == 3
    assert s.write(b"three") == 4
    assert fresh_read(tmp_path) == b"three"
    newest, older = slots_by_age(tmp_path)
    assert (newest.read_bytes()[8:16], older.read_bytes()[8:16]) == (
        struct.pack(">Q", 4),
        struct.pack(">Q", 3),
    )
    assert (tmp_path / "rec.a").stat().st_mode & 0o777 == 0o600


@pytest.mark.req("L13")
def test_record_layout_matches_documentation(tmp_path: Path) -> None:
    store(tmp_path).write(b"payload")
    data = (tmp_path / "rec.a").read_bytes()
    magic, fmt, flags, reserved, generation, length = struct.unpack(">4sBBHQI", data[:20])
    assert (magic, fmt, flags, reserved, generation) == (b"ASR1", 1, 0, 0, 1)  # slot a first
    assert length == len(data) - 20 == len(b"payload") + 12 + 16
    nonce, body = data[20:32], data[32:]
    assert sm4_gcm_decrypt(KEY, nonce, body, data[:20] + CONTEXT) == b"payload"
    assert b"payload" not in data


@pytest.mark.req("L13")
@pytest.mark.parametrize("how", ["truncate", "zero-tail", "garbage-tail", "flip"])
@pytest.mark.parametrize("at", [0.0, 0.1, 0.5, 0.99])
def test_damaged_newest_slot_falls_back_to_previous(tmp_path: Path, how: str, at: float) -> None:
    s = store(tmp_path)
    s.write(b"old state")
    s.write(b"new state")
    newest, older = slots_by_age(tmp_path)
    damage(newest, how, at)
    assert fresh_read(tmp_path) == b"old state"
    # And the next write replaces the damaged slot, not the good one.
    good = older.read_bytes()
    reopened = store(tmp_path)
    reopened.read()
    reopened.write(b"newer state")
    assert older.read_bytes() == good
    assert fresh_read(tmp_path) == b"newer state"


@pytest.mark.req("L13")
def test_both_slots_bad_is_a_clear_error(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.write(b"1")
    damage(tmp_path / "rec.a", "flip", 0.5)
    damage(tmp_path / "rec.b", "truncate", 0.5)
    with pytest.raises(StorageError) as info:
        fresh_read(tmp_path)
    assert info.value.code == "storage_corrupt"


@pytest.mark.req("L13")
def test_record_is_bound_to_key_and_context(tmp_path: Path) -> None:
    store(tmp_path).write(b"secret")
    for other in (store(tmp_path, key=bytes(16)), store(tmp_path, context=b"other/v1")):
        with pytest.raises(StorageError) as info:
            other.read()
        assert info.value.code == "storage_corrupt"


@pytest.mark.req("L13")
def test_power_cut_at_every_step_of_a_write(tmp_path: Path) -> None:
    """Crash at each system call of a write (and, before the data was synced, also lose or tear
    what was written): the reader gets the old state, or the new one only when it is whole."""
    probe = tmp_path / "probe"
    s = store(probe)
    s.write(b"old")
    with power_cut_at(10**6) as cut:
        s.write(b"new")
    calls = cut.calls
    steps = len(calls)
    assert calls[:2] == ["open", "write"]
    assert "fsync" in calls
    synced_at = calls.index("fsync")
    for step in range(steps):
        for how in ("none", "truncate", "zero-tail", "flip"):
            directory = tmp_path / f"{step}-{how}"
            s = store(directory)
            s.write(b"old")
            _, target = slots_by_age(directory)
            with pytest.raises(PowerLoss), power_cut_at(step):
                s.write(b"new " * 50)
            if step <= synced_at and how != "none":
                damage(target, how, 0.6)  # unsynced data may be lost or torn
            got = fresh_read(directory)
            assert got in (b"old", b"new " * 50)
            if step <= synced_at and how != "none":
                assert got == b"old"
            # Recovery continues normally.
            s = store(directory)
            s.read()
            s.write(b"after")
            assert fresh_read(directory) == b"after"


@pytest.mark.req("L13")
def test_io_error_keeps_previous_state_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = store(tmp_path)
    s.write(b"v1")
    s.write(b"v2")
    newest, _ = slots_by_age(tmp_path)
    good = newest.read_bytes()
    real_fsync = os.fsync

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(StorageError) as info:
        s.write(b"v3")
    assert info.value.code == "storage_io"
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert newest.read_bytes() == good  # the good slot was never touched
    s.write(b"v3")  # the retry goes to the same (older) slot again
    assert newest.read_bytes() == good
    assert fresh_read(tmp_path) == b"v3"


@pytest.mark.req("L13")
def test_torn_first_write_means_nothing_was_stored(tmp_path: Path) -> None:
    s = store(tmp_path)
    with pytest.raises(PowerLoss), power_cut_at(1):
        s.write(b"first")
    assert (tmp_path / "rec.a").exists()
    s = store(tmp_path)
    assert s.read() is None  # the previous state: nothing
    s.write(b"first")
    assert fresh_read(tmp_path) == b"first"


@pytest.mark.req("L13")
def test_record_size_limit(tmp_path: Path) -> None:
    s = SlotStore(tmp_path, "rec", Sm4GcmSealer(KEY), context=CONTEXT, max_payload=10)
    with pytest.raises(StorageError) as info:
        s.write(b"x" * 11)
    assert info.value.code == "record_too_large"


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.binary(max_size=64)),
        st.tuples(
            st.just("crash"),
            st.binary(max_size=64),
            st.integers(0, 8),
            st.sampled_from(["none", "truncate", "zero-tail", "garbage-tail", "flip"]),
            st.floats(0, 1),
        ),
    ),
    min_size=1,
    max_size=12,
)


@pytest.mark.req("L13")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops)
def test_property_any_sequence_of_writes_and_crashes(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        committed: bytes | None = None
        s = store(directory)
        for op in ops:
            if op[0] == "write":
                s.write(op[1])
                committed = op[1]
                assert fresh_read(directory) == committed
                continue
            _, value, step, how, at = op
            before = {p.name: p.read_bytes() for p in directory.iterdir()}
            with contextlib.suppress(PowerLoss), power_cut_at(step):
                s.write(value)
            changed = sorted(p for p in directory.iterdir() if before.get(p.name) != p.read_bytes())
            # A write touches one slot; only the first record fills both (a, then b), so the
            # slot being written when the power went is the last one changed.
            assert len(changed) <= 1 or committed is None
            if changed:
                damage(changed[-1], how, at)
            s = store(directory)  # reboot
            got = s.read()  # one damaged slot at most: never an error, never invented data
            assert got in (committed, value)
            committed = got


# --- event buffer -----------------------------------------------------------------------------


def events(directory: Path, capacity: int = 500, **kwargs: Any) -> EventBuffer:
    return EventBuffer(directory, Sm4GcmSealer(KEY), capacity=capacity, **kwargs)


@pytest.mark.req("L13", "L17")
def test_event_buffer_append_pending_upload_restart(tmp_path: Path) -> None:
    buf = events(tmp_path)
    ids = [buf.append(f"evt-{i}".encode()) for i in range(10)]
    assert ids == list(range(1, 11))
    assert [e.id for e in buf.pending(3)] == [1, 2, 3]
    buf.mark_uploaded(4)
    assert b"evt-" not in (tmp_path / "events.log").read_bytes()  # sealed at rest
    buf = events(tmp_path)  # reboot
    assert [e.record for e in buf.pending()] == [f"evt-{i}".encode() for i in range(4, 10)]
    assert buf.append(b"evt-10") == 11
    buf.mark_uploaded(2)  # behind the cursor: no effect
    assert buf.stats().cursor == 4
    with pytest.raises(StorageError) as info:
        buf.mark_uploaded(12)
    assert info.value.code == "event_unknown_id"


@pytest.mark.req("L13", "L17")
def test_event_buffer_keeps_500_and_drops_oldest_counted(tmp_path: Path) -> None:
    buf = events(tmp_path, capacity=500)
    for i in range(530):
        buf.append(i.to_bytes(4, "big"))
    stats = buf.stats()
    assert (stats.pending, stats.dropped, stats.last_id) == (500, 30, 530)
    assert buf.pending(1)[0].id == 31
    buf = events(tmp_path, capacity=500)  # the same after a reboot
    assert buf.stats() == stats
    assert [e.id for e in buf.pending(1000)] == list(range(31, 531))


@pytest.mark.req("L13", "L17")
def test_event_log_stays_bounded_and_restarts_never_duplicate(tmp_path: Path) -> None:
    uploaded: list[int] = []
    buf = events(tmp_path, capacity=50)
    for round_ in range(40):
        for i in range(37):
            buf.append(f"{round_}-{i}".encode())
        batch = buf.pending(45)
        uploaded.extend(e.id for e in batch)
        buf.mark_uploaded(batch[-1].id)
        if round_ % 3 == 0:
            buf = events(tmp_path, capacity=50)  # reboot
        frames = (tmp_path / "events.log").stat().st_size // (12 + 28 + 6)
        assert frames <= 2 * 50 + 37
    rest = buf.pending(1000)
    uploaded.extend(e.id for e in rest)
    assert len(uploaded) == len(set(uploaded))  # never handed out twice
    assert sorted(uploaded) == list(range(1, 40 * 37 + 1))  # nothing lost within capacity
    assert buf.stats().dropped == 0


@pytest.mark.req("L13", "L17")
@pytest.mark.parametrize("how", ["truncate", "zero-tail", "garbage-tail"])
def test_torn_append_loses_only_the_unfinished_event(tmp_path: Path, how: str) -> None:
    buf = events(tmp_path)
    for i in range(5):
        buf.append(b"ok-%d" % i)
    with pytest.raises(PowerLoss), power_cut_at(3) as cut:  # half the frame is written
        buf.append(b"torn")
    assert cut.calls[:4] == ["open", "ftruncate", "lseek", "write"]
    damage(tmp_path / "events.log", how, 0.97)
    buf = events(tmp_path)
    assert [e.record for e in buf.pending()] == [b"ok-%d" % i for i in range(5)]
    new_id = buf.append(b"after")
    assert new_id > 5
    buf = events(tmp_path)
    assert [e.record for e in buf.pending()][-1] == b"after"
    assert len(buf.pending()) == 6


@pytest.mark.req("L13", "L17")
def test_corrupted_log_never_reuses_ids(tmp_path: Path) -> None:
    buf = events(tmp_path)
    for i in range(10):
        buf.append(b"e%d" % i)
    data = bytearray((tmp_path / "events.log").read_bytes())
    data[len(data) // 3] ^= 0x01  # bit rot in the middle
    (tmp_path / "events.log").write_bytes(bytes(data))
    buf = events(tmp_path)
    kept = [e.id for e in buf.pending()]
    assert kept == list(range(1, len(kept) + 1))
    assert len(kept) < 10
    assert buf.stats().discarded_bytes > 0
    assert buf.append(b"next") > 10  # ids 1..10 were handed out: none is given again


@pytest.mark.req("L13")
def test_failed_append_leaves_no_partial_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buf = events(tmp_path)
    buf.append(b"first")
    real_fsync = os.fsync

    def failing(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(StorageError) as info:
        buf.append(b"lost")
    assert info.value.code == "storage_io"
    monkeypatch.setattr(os, "fsync", real_fsync)
    buf.append(b"second")
    assert [e.record for e in events(tmp_path).pending()] == [b"first", b"second"]


@pytest.mark.req("L13")
def test_crash_at_every_step_of_compaction(tmp_path: Path) -> None:
    def scenario(directory: Path) -> EventBuffer:
        buf = events(directory, capacity=4)
        for i in range(7):  # 7 frames in the log, the oldest 3 dropped
            buf.append(b"%d" % i)
        return buf

    probe = scenario(tmp_path / "probe")
    with power_cut_at(10**6) as cut:
        probe.append(b"7")  # the 8th frame reaches 2 × capacity: compaction
    calls = cut.calls
    assert "replace" in calls
    expected = [b"4", b"5", b"6", b"7"]
    assert [e.record for e in probe.pending()] == expected
    for step in range(len(calls)):
        directory = tmp_path / str(step)
        buf = scenario(directory)
        with contextlib.suppress(PowerLoss), power_cut_at(step):
            buf.append(b"7")
        buf = events(directory, capacity=4)
        got = [e.record for e in buf.pending()]
        assert got in (expected, [b"3", b"4", b"5", b"6"])  # with or without the new event
        assert buf.stats().dropped == 7 + (got == expected) - 4
        last = buf.pending()[-1].id
        new_id = buf.append(b"8")
        assert new_id > last
        assert [e.id for e in events(directory, capacity=4).pending()][-1] == new_id
    assert len((tmp_path / "probe" / "events.log").read_bytes()) < 8 * 40


@pytest.mark.req("L13")
def test_event_record_size_limit(tmp_path: Path) -> None:
    buf = events(tmp_path, max_record=16)
    with pytest.raises(StorageError) as info:
        buf.append(b"x" * 17)
    assert info.value.code == "record_too_large"


_event_ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(min_size=1, max_size=20)),
        st.tuples(st.just("upload"), st.integers(0, 5)),
        st.tuples(st.just("reboot")),
        st.tuples(st.just("crash"), st.binary(max_size=20), st.integers(0, 8)),
    ),
    max_size=40,
)


@pytest.mark.req("L13", "L17")
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_event_ops)
def test_property_event_buffer_model(ops: list[tuple[Any, ...]]) -> None:
    """Against a model: pending = appended (returned) records beyond the cursor, last
    ``capacity`` of them; a crashed append may or may not be there; ids never repeat."""
    capacity = 6
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        buf = events(directory, capacity=capacity)
        model: list[tuple[int, bytes]] = []
        seen_ids: set[int] = set()
        for op in ops:
            if op[0] == "append":
                event_id = buf.append(op[1])
                assert event_id not in seen_ids
                assert all(event_id > i for i in seen_ids)
                seen_ids.add(event_id)
                model = [*model, (event_id, op[1])][-capacity:]
            elif op[0] == "upload":
                batch = buf.pending(op[1])
                assert [(e.id, e.record) for e in batch] == model[: op[1]]
                if batch:
                    buf.mark_uploaded(batch[-1].id)
                    model = model[len(batch) :]
            elif op[0] == "reboot":
                buf = events(directory, capacity=capacity)
            else:
                _, record, step = op
                with contextlib.suppress(PowerLoss), power_cut_at(step):
                    buf.append(record)
                buf = events(directory, capacity=capacity)
                got = [(e.id, e.record) for e in buf.pending(100)]
                if got != model:  # the crashed append landed whole
                    assert got[-1][1] == record
                    assert got[-1][0] not in seen_ids
                    seen_ids.add(got[-1][0])
                    model = [*model, got[-1]][-capacity:]
            assert [(e.id, e.record) for e in buf.pending(100)] == model
