"""The gateway's side of face biometrics on devices (anju.biometrics.device_path, docs/gateway.md).

``bio_get`` is answered with ``bio_data`` in the same session (at most ``gets_per_second`` per
device; excess requests are dropped and counted, the device asks again). ``bio_template`` and
``bio_result`` are applied in the ingest's ordered work queue and answered with ``bio_ack`` once
committed — never stored as device events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from anju.biometrics.device_path import DeviceFaces
from anju.gateway.ratelimit import DeviceRateLimit
from anju.platform import Platform


@dataclass(frozen=True)
class BiometricOptions:
    """Tunables of face biometrics in one gateway process."""

    gets_per_second: float = 1.0
    burst: int = 5


class FaceRelay:
    """One per gateway process (owned by the ingest)."""

    def __init__(self, platform: Platform, options: BiometricOptions | None = None) -> None:
        self.platform = platform
        self.options = options or BiometricOptions()
        self._limit = DeviceRateLimit(self.options.gets_per_second, self.options.burst)

    def admit(self, device_id: str) -> bool:
        """Whether the device may have another ``bio_data`` now (rate limit)."""
        return self._limit.admit(device_id)

    async def data(self, device_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """The ``bio_data`` answer to ``bio_get``."""
        async with self.platform.db.transaction() as session:
            return await DeviceFaces(self.platform, session).data_for(
                device_id, message["subject"], message["version"]
            )

    async def receive(self, device_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """Apply ``bio_template`` / ``bio_result``; the ``bio_ack`` to send once committed."""
        async with self.platform.db.transaction() as session:
            faces = DeviceFaces(self.platform, session)
            if message["t"] == "bio_template":
                return await faces.store_template(device_id, message)
            return await faces.record_result(device_id, message)

    def forget(self, device_id: str) -> None:
        self._limit.forget(device_id)
