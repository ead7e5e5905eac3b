"""Small asyncio helpers."""

from __future__ import annotations

import asyncio


async def wait_any(*events: asyncio.Event, within: float | None = None) -> None:
    """Return when one of ``events`` is set or ``within`` seconds passed (None: no limit)."""
    if (within is not None and within <= 0) or any(e.is_set() for e in events):
        return
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
