"""A stopped lock's run() returns, even when a state report falls due at that very moment.

LockFirmware.run() cancels its workers and waits for them. Its state reporter waits with
``asyncio.wait_for(event.wait(), …)``, and on Python 3.11 a cancellation arriving together with
the event is lost: the reporter runs on and run() waits for ever. A command that moves the bolt
makes a state report due; a power cut or a stop right then (the fault tests hit it) hangs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from anju.device.lock import LockFirmware
from tests.support.fake_gateway import Pki, make_device


@pytest.mark.req("R2", "L13")
async def test_the_state_reporter_ends_when_cancelled_as_a_report_falls_due(
    tmp_path: Path,
) -> None:
    """The worker itself, as run() stops it: the fault tests reach this through a power cut
    right after a command moved the bolt (the reader task dies in the write, run() goes
    straight to cancelling its workers), which cannot be timed from outside."""
    device = make_device(Pki(), tmp_path / "dev")
    lock = LockFirmware(device.identity, device.reopen_se(), tmp_path / "data")
    reporter = asyncio.create_task(lock._report_state())
    await asyncio.sleep(0.05)  # waiting for the next report
    lock.set_locked(False, by="keypad")  # the bolt moved: a state report is due...
    reporter.cancel()  # ...as run() cancels its workers
    done, _ = await asyncio.wait({reporter}, timeout=5)
    reporter.cancel()  # (a second cancellation ends it either way)
    assert done, "the state reporter ran on after its cancellation"
