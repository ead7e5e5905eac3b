"""Device simulator: N reference lock firmwares in one asyncio process (``anju sim``).

It loads the devices made by ``anju devices manufacture`` from the factory file (device id, SE
directory and PIN, certificate, device CA public key), opens each software SE with its PIN like
a firmware at power-up, and runs :class:`~anju.device.lock.LockFirmware` for each, with some
simulated door activity. docs/device-sdk.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anju.device.client import ClientOptions, DeviceIdentity
from anju.device.lock import LockFirmware
from anju.device.secure_element import SoftwareSecureElement
from anju.errors import AnjuError, InvalidInput
from anju.kit.aio import wait_any
from anju.kit.crypto import SM2PublicKey
from anju.protocol.certificates import Certificate, CertKind

#: The factory file format written by ``anju devices manufacture``.
FACTORY_FORMAT = "anju-factory/1"


@dataclass(frozen=True)
class FactoryDevice:
    """One device entry of a factory file: what the firmware of that device holds."""

    device_id: str
    se_dir: Path
    se_pin: str
    certificate: Certificate
    ca_public_key: SM2PublicKey

    @property
    def identity(self) -> DeviceIdentity:
        return DeviceIdentity(self.device_id, self.certificate, self.ca_public_key)


def _bad(message: str) -> InvalidInput:
    return InvalidInput(f"出厂文件无效 / invalid factory file: {message}")


def load_factory(path: Path) -> list[FactoryDevice]:
    """Parse a factory file; relative SE directories are taken relative to the file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _bad(str(exc)) from None
    if not isinstance(doc, dict) or doc.get("format") != FACTORY_FORMAT:
        raise _bad(f"format is not {FACTORY_FORMAT}")
    devices = []
    for entry in doc.get("devices", []):
        try:
            certificate = Certificate.decode(bytes.fromhex(entry["certificate"]))
            se_dir = Path(entry["se_dir"])
            device = FactoryDevice(
                device_id=str(entry["device_id"]),
                se_dir=se_dir if se_dir.is_absolute() else path.parent / se_dir,
                se_pin=str(entry["se_pin"]),
                certificate=certificate,
                ca_public_key=SM2PublicKey.from_pem(entry["ca_public_key_pem"]),
            )
        except (KeyError, TypeError, ValueError, AnjuError) as exc:
            raise _bad(f"device entry: {exc}") from None
        if certificate.kind != CertKind.DEVICE or certificate.subject != device.device_id:
            raise _bad(f"certificate of {device.device_id} names another device")
        devices.append(device)
    return devices


@dataclass(frozen=True)
class SimSummary:
    """A snapshot over every simulated device."""

    devices: int
    connected: int
    events_sent: int
    events_pending: int
    events_dropped: int
    commands_executed: int
    reconnects: int
    stopped: int

    def line(self) -> str:
        return (
            f"在线 connected {self.connected}/{self.devices} · "
            f"已发事件 events sent {self.events_sent} (pending {self.events_pending}, "
            f"dropped {self.events_dropped}) · 已执行命令 commands executed "
            f"{self.commands_executed} · reconnects {self.reconnects}"
            + (f" · stopped {self.stopped}" if self.stopped else "")
        )


class Simulator:
    """Runs one LockFirmware per factory device; data under ``data_root/<device id>``."""

    def __init__(
        self,
        devices: list[FactoryDevice],
        data_root: Path,
        *,
        options: ClientOptions,
        event_interval_s: float = 30.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._rand = rand
        self._event_interval = event_interval_s
        self._stop = asyncio.Event()
        self.locks: list[LockFirmware] = []
        for device in devices:
            se = SoftwareSecureElement.open(device.se_dir)
            se.verify_pin(device.se_pin.encode("ascii"))
            self.locks.append(
                LockFirmware(
                    device.identity, se, data_root / device.device_id, options=options, rand=rand
                )
            )

    def summary(self) -> SimSummary:
        """Counters summed over every device."""
        locks = self.locks
        return SimSummary(
            devices=len(locks),
            connected=sum(lock.client.connected for lock in locks),
            events_sent=sum(lock.stats.events_sent for lock in locks),
            events_pending=sum(lock.buffer.stats().pending for lock in locks),
            events_dropped=sum(lock.buffer.stats().dropped for lock in locks),
            commands_executed=sum(lock.stats.commands_executed for lock in locks),
            reconnects=sum(max(0, lock.client.stats.connects - 1) for lock in locks),
            stopped=sum(lock.stats.stopped is not None for lock in locks),
        )

    def stop(self) -> None:
        """Make run() stop every device and return."""
        self._stop.set()

    async def _activity(self, lock: LockFirmware) -> None:
        """Somebody uses the door now and then (exponentially distributed gaps)."""
        if self._event_interval <= 0:
            return
        while True:
            gap = -self._event_interval * math.log(max(1.0 - self._rand(), 1e-12))
            await asyncio.sleep(gap)
            lock.set_locked(not lock.locked, by="keypad")

    async def run(
        self,
        *,
        duration_s: float | None = None,
        on_tick: Callable[[SimSummary], None] | None = None,
        tick_s: float = 1.0,
    ) -> SimSummary:
        """Run every device until ``duration_s`` passes (or forever); the final summary."""
        tasks: list[asyncio.Task[Any]] = []
        for lock in self.locks:
            tasks.append(asyncio.create_task(lock.run()))
            tasks.append(asyncio.create_task(self._activity(lock)))
        loop = asyncio.get_running_loop()
        deadline = None if duration_s is None else loop.time() + duration_s
        try:
            while not self._stop.is_set() and (deadline is None or loop.time() < deadline):
                wait = tick_s if deadline is None else min(tick_s, deadline - loop.time())
                await wait_any(self._stop, within=max(0.0, wait))
                if on_tick is not None:
                    on_tick(self.summary())
        finally:
            for lock in self.locks:
                await lock.stop()
            for task in tasks[1::2]:
                task.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        return self.summary()
