"""The live alarm stream (Server-Sent Events) of one signed-in operator.

Each new or changed alarm is an ``AlarmChange`` row; the stream sends the rows after its cursor
(the SSE ``id``, so a reconnecting browser resumes with ``Last-Event-ID``). It wakes at once
after a commit of this process that changed an alarm (:data:`ALARMS_CHANGED`) and otherwise
polls every second — which is how changes committed by *other* processes arrive (no
LISTEN/NOTIFY for alarms yet: within about a second on both backends). Every 15 s it sends a
comment line and re-checks the caller's session, ending the stream when it is no longer valid.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.alarms.service import ALARMS_CHANGED, AlarmService, alarm_summary
from anju.errors import AnjuError
from anju.kit.aio import wait_any
from anju.platform import Platform

POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0


@dataclass
class StreamState:
    principal: Principal
    cursor: int


async def _authenticate(platform: Platform, token: str) -> Principal:
    async with platform.db.transaction() as session:
        principal = await AccountService(platform, session).authenticate(token)
    AccountService.require(principal, Cap.ALARMS_MANAGE)
    return principal


async def open_stream(platform: Platform, token: str, last_event_id: str | None) -> StreamState:
    """Authenticate (401/403 before any byte is streamed) and place the cursor."""
    principal = await _authenticate(platform, token)
    if last_event_id is not None and last_event_id.isdigit():
        return StreamState(principal, int(last_event_id))
    async with platform.db.transaction() as session:
        cursor = await AlarmService(platform, session).last_change_id()
    return StreamState(principal, cursor)


async def alarm_stream(platform: Platform, token: str, state: StreamState) -> AsyncIterator[bytes]:
    """The SSE body (runs until the client goes away or its session ends)."""
    woken = ALARMS_CHANGED.subscribe()
    reveal = state.principal.has(Cap.PI_READ)
    try:
        yield b"retry: 1000\n: connected\n\n"
        idle = 0.0
        while True:
            woken.clear()
            async with platform.db.transaction() as session:
                changes = await AlarmService(platform, session).changes_after(
                    state.principal, state.cursor
                )
            for change, alarm in changes:
                state.cursor = change.id
                summary = alarm_summary(alarm, reveal_subject=reveal)
                data = {"change": change.change, "alarm": summary}
                text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
                yield f"id: {change.id}\nevent: alarm\ndata: {text}\n\n".encode()
            if changes:
                idle = 0.0
                continue
            await wait_any(woken, within=POLL_SECONDS)
            idle += POLL_SECONDS if not woken.is_set() else 0.0
            if idle >= HEARTBEAT_SECONDS:
                idle = 0.0
                try:
                    state.principal = await _authenticate(platform, token)
                except AnjuError:
                    yield b"event: end\ndata: {}\n\n"
                    return
                yield b": heartbeat\n\n"
    finally:
        ALARMS_CHANGED.unsubscribe(woken)
