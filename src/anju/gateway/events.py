"""Device events from the wire to the database: batched, de-duplicated, acknowledged after commit.

One INSERT … ON CONFLICT DO NOTHING per ≤ ``batch_max_delay_seconds`` or ``batch_max_events``, so
a redelivered or resent event is stored once; ``on_stored`` is told each committed batch (the
ingest sends the devices their ``evt_ack``). A failed batch is retried, not lost. A lock's
receipt or alarm (:data:`URGENT_KINDS`) is stored at once, with whatever else is pending.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from anju.devices.models import Device
from anju.gateway.models import DeviceEvent
from anju.gateway.options import GatewayCounters, GatewayOptions
from anju.gateway.records import RecordHook
from anju.gateway.sessions import dialect_insert
from anju.kit.aio import wait_any
from anju.platform import Platform
from anju.protocol.access import ALARM_RAISED_EVENT, RECEIPT_EVENT

logger = logging.getLogger("anju.gateway")

STOP_RETRIES = 5  # attempts to store the last events when stopping with the database down
#: Events an operator or a waiting credential push is watching for: a lock's receipt of an
#: access command and its alarms skip the batching delay (they still share a batch with what is
#: pending). Bulk telemetry keeps the delay that makes thousands of events per second cheap.
URGENT_KINDS = frozenset(
    {RECEIPT_EVENT, ALARM_RAISED_EVENT}
)  # attempts to store the last events when stopping with the database down


def ms_to_datetime(ms: int) -> datetime:
    """An aware UTC datetime from unix milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class EventRow:
    device_id: str
    event_id: str
    org_id: str | None
    kind: str
    at_ms: int
    received_ms: int
    data: str
    session_id: str
    seq: int


class EventBatcher:
    """Collects events and stores them in batches; a failed batch is retried, not lost."""

    def __init__(
        self,
        platform: Platform,
        options: GatewayOptions,
        counters: GatewayCounters,
        on_stored: Callable[[list[EventRow]], None] | None = None,
    ):
        self._platform = platform
        self._options = options
        self._counters = counters
        self._on_stored = on_stored
        self._records = RecordHook(platform)
        self._pending: dict[tuple[str, str], EventRow] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._urgent = False  # an event someone waits for is pending: store without the delay

    def add(self, row: EventRow) -> None:
        """Queue one event (a repeat of a queued one is dropped here already)."""
        key = (row.device_id, row.event_id)
        if key in self._pending:
            self._counters.events_duplicate += 1
            return
        if len(self._pending) >= self._options.max_pending_events:
            self._counters.events_dropped += 1  # database far behind: shed load, counted
            return
        self._pending[key] = row
        self._idle.clear()
        # The first event starts the batch's delay (the task may be asleep, idle); a full
        # batch is stored at once.
        if row.kind in URGENT_KINDS:
            self._urgent = True
            self._wake.set()
        elif len(self._pending) in (1, self._options.batch_max_events):
            self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="anju-gateway-events")

    async def _run(self) -> None:
        delay = self._options.batch_max_delay_seconds
        failures = 0
        while True:
            if not self._pending:
                self._idle.set()
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            full = len(self._pending) >= self._options.batch_max_events
            if not (full or self._urgent or self._stopping):
                self._wake.clear()
                await wait_any(self._wake, within=delay)
            self._urgent = False
            batch = list(self._pending.values())[: self._options.batch_max_events]
            try:
                await self._store(batch)
            except Exception:
                failures += 1
                self._counters.store_retries += 1
                logger.exception("storing %d device events failed; retrying", len(batch))
                if self._stopping and failures >= STOP_RETRIES:
                    # Shutting down with the database gone: give up rather than hang, loudly.
                    logger.error("dropping %d device events at shutdown", len(self._pending))
                    self._counters.events_dropped += len(self._pending)
                    self._pending.clear()
                    continue
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                continue
            failures = 0
            for row in batch:
                self._pending.pop((row.device_id, row.event_id), None)
            if self._on_stored is not None:
                try:
                    self._on_stored(batch)
                except Exception:  # the events are stored; unacknowledged ones are resent
                    logger.exception("acknowledging %d stored events failed", len(batch))

    async def _store(self, batch: list[EventRow]) -> None:
        values = [
            {
                "device_id": r.device_id,
                "event_id": r.event_id,
                "org_id": r.org_id,
                "kind": r.kind,
                "at": ms_to_datetime(r.at_ms),
                "received_at": ms_to_datetime(r.received_ms),
                "data": r.data,
                "session_id": r.session_id,
                "seq": r.seq,
            }
            for r in batch
        ]
        async with self._platform.db.transaction() as session:
            unknown = {v["device_id"] for v in values if v["org_id"] is None}
            if unknown:  # the session's confirmation is not stored yet: look the owner up
                rows = await session.execute(
                    select(Device.id, Device.org_id).where(Device.id.in_(unknown))
                )
                owners = {row.id: row.org_id for row in rows}
                for v in values:
                    if v["org_id"] is None:
                        v["org_id"] = owners.get(v["device_id"])
            # One cached statement executed for many rows ("insertmanyvalues" batches them).
            stmt = dialect_insert(session, DeviceEvent)
            stmt = stmt.on_conflict_do_nothing(index_elements=["device_id", "event_id"])
            returning = stmt.returning(DeviceEvent.device_id, DeviceEvent.event_id)
            inserted = {(r.device_id, r.event_id) for r in await session.execute(returning, values)}
            stored = len(inserted)
            # Signed lock records of the rows actually inserted (not the duplicates), in this
            # transaction: used exactly once, or the batch is retried (gateway/records.py).
            verified, refused = await self._records(
                session, [r for r in batch if (r.device_id, r.event_id) in inserted]
            )
        self._counters.events_stored += stored
        self._counters.records_verified += verified
        self._counters.records_rejected += refused
        self._counters.events_duplicate += len(batch) - stored

    async def drain(self) -> None:
        """Wait until every queued event is stored (used on shutdown and by tests)."""
        self._wake.set()
        await self._idle.wait()

    def abort(self) -> asyncio.Task[None] | None:
        """Forget what is queued (unstored, unacknowledged); the task, for the caller to cancel."""
        self._pending.clear()
        task, self._task = self._task, None
        return task

    async def stop(self) -> None:
        """Store what is queued, then end the background task."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
