"""Reference locks for fault-injection tests: each behind its own TCP proxy, with a ledger.

A :class:`LockFleet` runs real :class:`~anju.device.lock.LockFirmware` instances against a broker.
Every lock reaches the broker through its own :class:`~tests.support.tcp_proxy.TcpProxy`, so a
test can drop one lock's network (or everyone's) without touching the broker, and can cut a
lock's power: its task is cancelled with its connection reset (no MQTT DISCONNECT, nothing
flushed), and :meth:`LockFleet.power_on` starts a new firmware from the same data directory
and secure element, as a lock does after power returns.

The :class:`Ledger` keeps, across power cycles, what the locks really did: the id of every event
a firmware recorded durably (the ids ``record_event`` returned, including the events commands
produce) and how many commands each executed. Tests compare it with what the platform stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from anju.device.client import DeviceIdentity
from anju.device.lock import LockConfig, LockFirmware
from anju.device.secure_element import SoftwareSecureElement
from anju.devices.ca import ca_public_key
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.device_harness import fast_options
from tests.support.gateway_state import enqueue
from tests.support.power_loss import PowerLoss
from tests.support.registry import PIN, Made
from tests.support.tcp_proxy import TcpProxy


@dataclass
class Ledger:
    """What one lock did, over all its power cycles."""

    recorded: list[str] = field(default_factory=list)  # event ids, in recording order
    executed: int = 0  # commands executed by earlier incarnations (power-cycled away)


class TracedLock(LockFirmware):
    """The reference firmware, writing each event id it durably recorded to a ledger."""

    def __init__(self, *args: Any, ledger: Ledger, **kwargs: Any) -> None:
        self.ledger = ledger
        super().__init__(*args, **kwargs)

    def record_event(self, kind: str, data: dict[str, Any] | None = None) -> str:
        event_id = super().record_event(kind, data)  # raises if the append did not complete
        self.ledger.recorded.append(event_id)
        return event_id


class FleetLock:
    """One lock of the fleet: its identity, data directory, proxy, firmware and ledger."""

    def __init__(self, made: Made, data_dir: Path, proxy: TcpProxy) -> None:
        self.made = made
        self.device_id = made.device_id
        self.data_dir = data_dir
        self.proxy = proxy
        self.ledger = Ledger()
        self.firmware: TracedLock | None = None
        self.task: asyncio.Task[None] | None = None
        self.power_cycles = 0

    @property
    def lock(self) -> TracedLock:
        assert self.firmware is not None, "the lock is powered off"
        return self.firmware

    @property
    def executed(self) -> int:
        """Commands executed over all power cycles."""
        running = self.firmware.stats.commands_executed if self.firmware is not None else 0
        return self.ledger.executed + running

    @property
    def online(self) -> bool:
        """True while the firmware has a session with the platform."""
        return self.firmware is not None and self.firmware.client.connected


class LockFleet:
    """``count`` registered locks running reference firmware (see the module docstring)."""

    def __init__(
        self,
        platform: Platform,
        clock: FixedClock,
        made: list[Made],
        directory: Path,
        broker: tuple[str, int],
        *,
        config: LockConfig | None = None,
    ) -> None:
        self.platform = platform
        self.clock = clock
        self.broker = broker
        self.config = config or LockConfig()
        self.locks = [
            FleetLock(m, directory / f"lock-{i}", TcpProxy(*broker)) for i, m in enumerate(made)
        ]
        self._ca = ca_public_key(platform.keys)

    def __iter__(self) -> Any:
        return iter(self.locks)

    def __getitem__(self, index: int) -> FleetLock:
        return self.locks[index]

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def _firmware(self, lock: FleetLock) -> TracedLock:
        """The firmware as it boots: SE opened from its directory, PIN verified, state loaded."""
        se = SoftwareSecureElement.open(lock.made.se.path)
        se.verify_pin(PIN)
        identity = DeviceIdentity(lock.device_id, lock.made.certificate, self._ca)
        return TracedLock(
            identity,
            se,
            lock.data_dir,
            options=fast_options(host=lock.proxy.host, port=lock.proxy.port),
            config=self.config,
            now_ms=self._now_ms,
            ledger=lock.ledger,
        )

    # -- power ----------------------------------------------------------------------------------
    async def start(self) -> LockFleet:
        for lock in self.locks:
            await lock.proxy.start()
            await self.power_on(lock)
        return self

    async def power_on(self, lock: FleetLock) -> TracedLock:
        """Boot the firmware from the lock's data directory and run it."""
        assert lock.task is None, "already running"
        lock.firmware = self._firmware(lock)
        lock.task = asyncio.create_task(lock.firmware.run(), name=f"lock-{lock.device_id[:8]}")
        return lock.firmware

    def cut_power(self, lock: FleetLock) -> None:
        """Power fails now: the connection is reset and the firmware stops at its next step.

        Synchronous, so it can run inside a write that is being cut (power_cut_at's on_cut)."""
        lock.proxy.cut()
        lock.proxy.refuse()  # a dead lock opens no new connection either
        if lock.task is not None:
            lock.task.cancel()

    async def power_off(self, lock: FleetLock) -> None:
        """Cut the power (if not already) and wait for the firmware to be gone."""
        self.cut_power(lock)
        if lock.task is not None:
            with contextlib.suppress(asyncio.CancelledError, PowerLoss):
                await lock.task
        if lock.firmware is not None:
            lock.ledger.executed += lock.firmware.stats.commands_executed
        lock.firmware, lock.task = None, None
        lock.power_cycles += 1
        lock.proxy.restore()

    async def stop(self) -> None:
        """Stop every running firmware cleanly, then the proxies."""
        for lock in self.locks:
            if lock.firmware is not None and lock.task is not None:
                await lock.firmware.stop()
                with contextlib.suppress(asyncio.CancelledError, PowerLoss):
                    await asyncio.wait_for(lock.task, 10)
                lock.ledger.executed += lock.firmware.stats.commands_executed
                lock.firmware, lock.task = None, None
        for lock in self.locks:
            await lock.proxy.stop()

    # -- network --------------------------------------------------------------------------------
    def cut_network(self, which: Callable[[FleetLock], bool] = lambda _lock: True) -> int:
        """Reset the broker connections of the chosen locks; how many were open."""
        return sum(lock.proxy.cut() for lock in self.locks if which(lock))

    # -- activity -------------------------------------------------------------------------------
    def record(self, per_lock: int, kind: str = "door.opened") -> None:
        """Each running lock records ``per_lock`` events (durably, at once)."""
        for lock in self.locks:
            if lock.firmware is not None:
                for n in range(per_lock):
                    lock.firmware.record_event(kind, {"n": n})

    def all_online(self) -> bool:
        return all(lock.online for lock in self.locks)


@contextlib.asynccontextmanager
async def running_fleet(
    platform: Platform,
    clock: FixedClock,
    directory: Path,
    broker: tuple[str, int],
    made: list[Made],
) -> AsyncIterator[LockFleet]:
    """A started :class:`LockFleet` under ``directory/locks``, stopped cleanly afterwards."""
    fleet = LockFleet(platform, clock, made, directory / "locks", broker)
    await fleet.start()
    try:
        yield fleet
    finally:
        await fleet.stop()


async def burst(
    platform: Platform, fleet: LockFleet, rounds: int, commands: dict[str, str]
) -> None:
    """Events on every running lock, two per round (50 ms), and meanwhile a command every
    fourth round for one lock after another (unlock, lock, …), recorded in ``commands``
    (id → device id). The operator queues commands independently of the locks' events and
    tries again while the database is away, as people do."""

    async def events() -> None:
        for _ in range(rounds):
            fleet.record(2)
            await asyncio.sleep(0.05)

    async def operator() -> None:
        names = ("unlock", "lock")
        for n in range(rounds // 4):
            lock = fleet[n % len(fleet.locks)]
            while True:
                try:
                    command_id = await enqueue(platform, lock.device_id, names[n % 2])
                    break
                except (DBAPIError, OSError):
                    await asyncio.sleep(0.5)
            commands[command_id] = lock.device_id
            await asyncio.sleep(0.2)

    await asyncio.gather(events(), operator())
