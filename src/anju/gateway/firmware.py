"""The gateway's side of firmware transfer: ``fw_get`` answered with ``fw_chunk``, ``fw_state``
applied to the rollout, and the periodic rollout tick (docs/firmware.md).

Images are served from an in-process LRU (bounded in bytes) filled from the database on first
use, so a fleet fetching the same package costs one read. A device gets chunks only of a package
a serving rollout offered it and it has not finished (checked in the database, a positive answer
cached for a few seconds), and at most ``chunks_per_second`` of them (a token bucket per device;
excess requests are dropped and counted — the device asks again).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from anju.firmware.progress import ProgressCounters, RolloutProgress
from anju.gateway.ratelimit import DeviceRateLimit
from anju.platform import Platform
from anju.protocol.firmware import b64encode, chunk_count, chunk_of

NOT_OFFERED = "fw_not_offered"


@dataclass(frozen=True)
class FirmwareOptions:
    """Tunables of firmware serving in one gateway process."""

    chunks_per_second: float = 50.0
    burst: int = 100
    cache_bytes: int = 64 * 1024 * 1024
    offer_cache_seconds: float = 10.0
    tick_rollouts: int = 50


class FirmwareServer:
    """One per gateway process (owned by the ingest)."""

    def __init__(self, platform: Platform, options: FirmwareOptions | None = None) -> None:
        self.platform = platform
        self.options = options or FirmwareOptions()
        self.counters = ProgressCounters()
        self._images: OrderedDict[str, bytes] = OrderedDict()
        self._cached_bytes = 0
        self._loading: dict[str, asyncio.Task[bytes | None]] = {}
        self._offers: dict[str, dict[str, float]] = {}  # device → package → cached until
        self._limit = DeviceRateLimit(self.options.chunks_per_second, self.options.burst)

    # --- fw_get ----------------------------------------------------------------------------
    def admit(self, device_id: str) -> bool:
        """Whether the device may have another chunk now (rate limit)."""
        return self._limit.admit(device_id)

    async def chunk(self, device_id: str, package_id: str, index: int) -> dict[str, Any]:
        """The ``fw_chunk`` answer to a device's ``fw_get``."""
        image = (
            await self._image(package_id) if await self._offered(device_id, package_id) else None
        )
        if image is None or index >= chunk_count(len(image)):
            return {
                "t": "fw_chunk",
                "pkg": package_id,
                "i": index,
                "data": None,
                "code": NOT_OFFERED,
            }
        data = b64encode(chunk_of(image, index))
        return {"t": "fw_chunk", "pkg": package_id, "i": index, "data": data, "code": None}

    async def _offered(self, device_id: str, package_id: str) -> bool:
        now = time.monotonic()
        cached = self._offers.setdefault(device_id, {})
        if cached.get(package_id, 0.0) > now:
            return True
        async with self.platform.db.transaction() as session:
            offered = await RolloutProgress(self.platform, session).is_offered(
                device_id, package_id
            )
        if offered:
            cached[package_id] = now + self.options.offer_cache_seconds
        else:
            cached.pop(package_id, None)
        return offered

    async def _image(self, package_id: str) -> bytes | None:
        image = self._images.get(package_id)
        if image is not None:
            self._images.move_to_end(package_id)
            return image
        loading = self._loading.get(package_id)
        if loading is None:  # one database read however many devices ask at once
            loading = asyncio.ensure_future(self._load(package_id))
            self._loading[package_id] = loading
            loading.add_done_callback(lambda _: self._loading.pop(package_id, None))
        return await asyncio.shield(loading)

    async def _load(self, package_id: str) -> bytes | None:
        async with self.platform.db.transaction() as session:
            image = await RolloutProgress(self.platform, session).image(package_id)
        if image is not None:
            self._images[package_id] = image
            self._cached_bytes += len(image)
            while self._cached_bytes > self.options.cache_bytes and len(self._images) > 1:
                _, dropped = self._images.popitem(last=False)
                self._cached_bytes -= len(dropped)
        return image

    # --- fw_state and the tick -------------------------------------------------------------
    async def report(self, device_id: str, message: dict[str, Any]) -> None:
        """Apply a device's ``fw_state`` (called from the ingest's ordered work queue)."""
        async with self.platform.db.transaction() as session:
            await RolloutProgress(self.platform, session, counters=self.counters).record_report(
                device_id, message["pkg"], message["state"], message["code"]
            )

    async def tick(self) -> int:
        """Fold ended commands into running rollouts and move them on (the gateway's sweep)."""
        async with self.platform.db.transaction() as session:
            return await RolloutProgress(self.platform, session, counters=self.counters).tick(
                self.options.tick_rollouts
            )

    def forget(self, device_id: str) -> None:
        """Drop what is kept about a device whose session ended (bounded memory)."""
        self._limit.forget(device_id)
        self._offers.pop(device_id, None)
