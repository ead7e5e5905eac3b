"""Reference lock firmware on the device SDK (docs/device-sdk.md).

State: locked/unlocked, battery, firmware version, signal, operator attributes. Events go to a
sealed, power-loss-safe :class:`~anju.device.storage.EventBuffer` first and are uploaded in order
whenever a session is up; an event leaves the buffer only once the platform's ``evt_ack`` says it
is durably stored (at-least-once, stable ids; the platform de-duplicates resends). Commands are
executed at most once: the id is recorded durably *before* the lock acts, and a redelivered
command is acknowledged again with the remembered result but never executed twice. Firmware
updates (``ota.update``) are verified before anything is downloaded and installed by an A/B
switch (:mod:`anju.device.ota`). With a camera, faces are enrolled and recognised on the lock
itself (``bio.*`` commands, :meth:`LockFirmware.face_unlock`; :mod:`anju.device.faces`).
Access control (``access.*`` commands, local verification of every credential, lockout, alarms
and signed unlock records) is :attr:`LockFirmware.access` (:mod:`anju.device.access`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from anju.device.access import AccessAgent, AccessOptions
from anju.device.access.offline import OfflineBookFactory, code_book
from anju.device.client import (
    ClientOptions,
    Clock,
    DeviceClient,
    DeviceIdentity,
    DeviceKeysDestroyed,
    DeviceSecureElement,
    NotConnected,
    system_ms,
)
from anju.device.faces import Camera, FaceAgent, FaceOptions, FaceVerdict
from anju.device.ota import OtaAgent, OtaOptions
from anju.device.ota_store import OtaStore
from anju.device.storage import EventBuffer, Sealer, SlotStore
from anju.errors import AnjuError
from anju.face.engine import FaceEngine
from anju.protocol.access import COMMANDS as ACCESS_COMMANDS
from anju.protocol.biometrics import COMMANDS as FACE_COMMANDS
from anju.protocol.firmware import OFFER_COMMAND
from anju.protocol.messages import canonical_json

log = logging.getLogger(__name__)

FIRMWARE_VERSION = "anju-lock/0.1.0"
FIRMWARE_CONTEXT = b"anju/lock-firmware/v1"
EVENT_CONTEXT = b"anju/lock-events/v1"
OTA_CONTEXT = b"anju/lock-ota/v1"
FACES_CONTEXT = b"anju/lock-faces/v1"
#: How many executed command ids the lock remembers (the platform gives up on a command after
#: max_attempts = 5 deliveries within its TTL, so recent ids are all that can come back).
EXECUTED_MEMORY = 256
MAX_ATTRIBUTES = 32
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9_.]{1,64}")

CommandResult = tuple[bool, str | None]


class LockSecureElement(DeviceSecureElement, Protocol):
    """The SE as the lock firmware uses it: the client's needs plus storage sealing."""

    def storage_sealer(self, label: str) -> Sealer:
        """A sealer whose key (from the SE-only data key) never leaves the SE."""
        ...


@dataclass(frozen=True)
class LockConfig:
    """Firmware settings."""

    buffer_capacity: int = 512
    upload_batch: int = 50
    #: Seconds to wait for the platform's evt_ack of an uploaded batch before sending it again.
    ack_timeout_s: float = 30.0
    state_interval_s: float = 300.0
    #: The factory image, ``<name>/<version>``; firmware updates replace the version.
    firmware: str = FIRMWARE_VERSION
    ota: OtaOptions = field(default_factory=OtaOptions)
    faces: FaceOptions = field(default_factory=FaceOptions)
    access: AccessOptions = field(default_factory=AccessOptions)


@dataclass
class LockStats:
    """What the simulator summarises."""

    events_sent: int = 0  # acknowledged by the platform (stored there)
    events_resent: int = 0
    commands_executed: int = 0
    commands_redelivered: int = 0
    acks_sent: int = 0
    states_sent: int = 0
    stopped: str | None = None  # why the firmware stopped for good ("keys_destroyed")


class LockFirmware:
    """A smart lock: run() keeps it connected, uploading events and executing commands."""

    def __init__(
        self,
        identity: DeviceIdentity,
        se: LockSecureElement,
        data_dir: Path,
        *,
        options: ClientOptions | None = None,
        config: LockConfig | None = None,
        now_ms: Clock = system_ms,
        rand: Callable[[], float] | None = None,
        camera: Camera | None = None,
        face_engine: Callable[[], FaceEngine] = FaceEngine,
        offline_book: OfflineBookFactory | None = code_book,
    ) -> None:
        self.config = config or LockConfig()
        self.stats = LockStats()
        self.battery: int | None = 100
        self.signal: int | None = -60
        self._now = now_ms
        device_bytes = bytes.fromhex(identity.device_id)
        self.buffer = EventBuffer(
            data_dir / "events",
            se.storage_sealer("lock/events"),
            capacity=self.config.buffer_capacity,
            context=EVENT_CONTEXT + device_bytes,
        )
        self._store = SlotStore(
            data_dir,
            "firmware",
            se.storage_sealer("lock/firmware"),
            context=FIRMWARE_CONTEXT + device_bytes,
        )
        self.locked = True
        self.attributes: dict[str, str | int | bool | None] = {}
        # command id -> (ok, code), or None while executing (a crash leaves it so)
        self._executed: OrderedDict[str, CommandResult | None] = OrderedDict()
        self._load()
        client_kwargs: dict[str, Any] = {"rand": rand} if rand is not None else {}
        self.client = DeviceClient(
            identity,
            se,
            on_message=self._on_message,
            on_session=self._on_session,
            options=options,
            now_ms=now_ms,
            **client_kwargs,
        )
        self._wake_uploader = asyncio.Event()
        # ids of the uploaded batch the platform has not acknowledged yet
        self._unacked: set[str] = set()
        self._batch_acked = asyncio.Event()
        self._new_session = asyncio.Event()
        self._state_due = asyncio.Event()
        # Firmware updates: "<name>/<version>" is what ran at the factory; updates change the
        # version (the reference lock is Python: installing switches the recorded image).
        self._firmware_name, _, factory_version = self.config.firmware.rpartition("/")
        self.ota = OtaAgent(
            OtaStore(
                data_dir / "ota",
                se.storage_sealer("lock/ota"),
                context=OTA_CONTEXT + device_bytes,
            ),
            self.client,
            product=identity.certificate.product,
            factory_version=factory_version,
            ca_public_key=identity.ca_public_key,
            now_s=lambda: now_ms() // 1000,
            on_installed=self._state_due.set,
            options=self.config.ota,
        )
        # Faces (only with a camera for enrolment and unlocking; templates may still be loaded).
        self.faces = FaceAgent(
            SlotStore(
                data_dir,
                "faces",
                se.storage_sealer("lock/faces"),
                context=FACES_CONTEXT + device_bytes,
            ),
            self.client,
            self._send_durably,
            camera=camera,
            engine=face_engine,
            now_ms=now_ms,
            options=self.config.faces,
        )
        self.access = AccessAgent(
            device_id=identity.device_id,
            ca_public_key=identity.ca_public_key,
            se=se,
            data_dir=data_dir,
            faces=self.faces,
            record_event=self.record_event,
            unlock=lambda by: self.set_locked(False, by=by),
            is_locked=lambda: self.locked,
            relock=lambda: self.set_locked(True, by="auto"),
            now_ms=now_ms,
            options=self.config.access,
            offline_book=offline_book,
        )
        self._commands: dict[str, Callable[[str, dict[str, Any]], CommandResult]] = {
            "unlock": self._cmd_unlock,
            "lock": self._cmd_lock,
            "report_state": self._cmd_report_state,
            "ping": self._cmd_ping,
            "set_attribute": self._cmd_set_attribute,
            OFFER_COMMAND: self._cmd_ota_update,
        }
        self._commands.update({name: self._face_command(name) for name in FACE_COMMANDS})
        self._commands.update({name: self._access_command(name) for name in ACCESS_COMMANDS})

    # -- persistence ----------------------------------------------------------------------------
    def _load(self) -> None:
        raw = self._store.read()
        if raw is None:
            return
        doc = json.loads(raw)
        self.locked = bool(doc["locked"])
        self.attributes = dict(doc["attributes"])
        self._executed = OrderedDict(
            (cid, None if result is None else (bool(result[0]), result[1]))
            for cid, result in doc["executed"]
        )

    def _save(self) -> None:
        while len(self._executed) > EXECUTED_MEMORY:
            self._executed.popitem(last=False)
        doc = {
            "locked": self.locked,
            "attributes": self.attributes,
            "executed": [
                [cid, None if result is None else list(result)]
                for cid, result in self._executed.items()
            ],
        }
        self._store.write(canonical_json(doc))

    @property
    def firmware(self) -> str:
        """The running firmware as reported: ``<name>/<version>``, e.g. ``anju-lock/0.1.0``."""
        version = self.ota.running_version
        return f"{self._firmware_name}/{version}" if self._firmware_name else version

    # -- local operation ------------------------------------------------------------------------
    def record_event(self, kind: str, data: dict[str, Any] | None = None) -> str:
        """Store an event durably (it is uploaded when a session is up); its stable id."""
        event_id = uuid.uuid4().hex
        message = {"t": "evt", "id": event_id, "at": self._now(), "kind": kind, "data": data or {}}
        self._send_durably(message)
        return event_id

    def _send_durably(self, message: dict[str, Any]) -> None:
        """Queue an uplink message that must arrive (an event, a face result or template) in
        the sealed buffer; it is sent in order and dropped once the platform acknowledged its
        id (``evt_ack`` for events, ``bio_ack`` for face messages)."""
        self.buffer.append(canonical_json(message))
        self._wake_uploader.set()

    async def face_unlock(self) -> FaceVerdict:
        """Someone at the door: unlock if they are live, one of the people loaded here, not
        frozen and the lock is not locked out (the signed record says which)."""
        verdict = await self.access.face_unlock()
        return verdict.face or FaceVerdict(False, None, None, [])

    def set_battery(self, percent: int) -> None:
        """A battery gauge reading: reported in ``state``, and low_battery raised or cleared."""
        self.battery = percent
        self.access.alarms.battery(percent)
        self._state_due.set()

    def set_locked(self, locked: bool, *, by: str, command_id: str | None = None) -> None:
        """Drive the bolt (here: the state variable) and record the event."""
        changed = locked != self.locked
        self.locked = locked
        self._save()
        data: dict[str, Any] = {"by": by}
        if command_id is not None:
            data["cmd"] = command_id
        self.record_event("lock.locked" if locked else "lock.unlocked", data)
        if changed:
            self._state_due.set()

    def state_message(self) -> dict[str, Any]:
        """The ``state`` message as it would be sent now."""
        stats = self.buffer.stats()
        return {
            "t": "state",
            "at": self._now(),
            "battery": self.battery,
            "firmware": self.firmware,
            "signal": self.signal,
            # A flat object of scalars (protocol rule): attributes appear as "attr.<name>".
            "extra": {
                "locked": self.locked,
                "events_pending": stats.pending,
                "events_dropped": stats.dropped,
                **{f"attr.{name}": value for name, value in self.attributes.items()},
            },
        }

    # -- commands -------------------------------------------------------------------------------
    async def _on_message(self, message: dict[str, Any]) -> None:
        if message["t"] in ("evt_ack", "bio_ack"):
            ids = message["ids"] if message["t"] == "evt_ack" else [message["id"]]
            if message["t"] == "bio_ack" and not message["ok"]:
                log.warning("the platform refused a face message: %s", message["code"])
            self._unacked.difference_update(ids)
            if not self._unacked:
                self._batch_acked.set()
            return
        if message["t"] == "fw_chunk":
            self.ota.on_chunk(message)
            return
        if message["t"] == "bio_data":
            self.faces.on_data(message)
            return
        if message["t"] != "cmd":
            return
        command_id: str = message["id"]
        if command_id in self._executed:
            self.stats.commands_redelivered += 1
            remembered = self._executed[command_id]
            # None: we crashed while executing it; it may or may not have happened.
            ok, code = (False, "interrupted") if remembered is None else remembered
            self._ack(command_id, ok, code)
            return
        handler = self._commands.get(message["name"])
        if message["exp"] < self._now():
            result: CommandResult = (False, "expired")
        elif handler is None:
            result = (False, "unknown_command")
        else:
            self._executed[command_id] = None
            self._save()  # at most once: remembered durably before the lock acts
            result = handler(command_id, message["args"])
            self.stats.commands_executed += 1
        self._executed[command_id] = result
        self._save()
        self._ack(command_id, *result)

    def _ack(self, command_id: str, ok: bool, code: str | None) -> None:
        with contextlib.suppress(NotConnected):  # the platform redelivers; we ack again then
            self.client.send({"t": "ack", "id": command_id, "ok": ok, "code": code})
            self.stats.acks_sent += 1

    def _cmd_unlock(self, command_id: str, args: dict[str, Any]) -> CommandResult:
        self.access.remote_unlock()  # the signed access.unlock record
        self.set_locked(False, by="command", command_id=command_id)
        return True, None

    def _cmd_lock(self, command_id: str, args: dict[str, Any]) -> CommandResult:
        self.set_locked(True, by="command", command_id=command_id)
        return True, None

    def _cmd_report_state(self, command_id: str, args: dict[str, Any]) -> CommandResult:
        self._state_due.set()
        return True, None

    def _cmd_ping(self, command_id: str, args: dict[str, Any]) -> CommandResult:
        return True, None

    def _face_command(self, name: str) -> Callable[[str, dict[str, Any]], CommandResult]:
        def execute(command_id: str, args: dict[str, Any]) -> CommandResult:
            return self.faces.command(name, args)

        return execute

    def _access_command(self, name: str) -> Callable[[str, dict[str, Any]], CommandResult]:
        def execute(command_id: str, args: dict[str, Any]) -> CommandResult:
            return self.access.command(name, command_id, args)

        return execute

    def _cmd_ota_update(self, command_id: str, args: dict[str, Any]) -> CommandResult:
        return self.ota.offer(args)  # checked now; downloaded and installed in the background

    def _cmd_set_attribute(self, command_id: str, args: dict[str, Any]) -> CommandResult:
        name, value = args.get("name"), args.get("value")
        if (
            set(args) != {"name", "value"}
            or not isinstance(name, str)
            or not _ATTRIBUTE_NAME.fullmatch(name)
            or not (value is None or isinstance(value, str | int | bool))
            or (isinstance(value, str) and len(value) > 64)
        ):
            return False, "bad_args"
        if name not in self.attributes and len(self.attributes) >= MAX_ATTRIBUTES:
            return False, "attribute_limit"
        self.attributes[name] = value
        self._state_due.set()
        return True, None

    # -- connection life ------------------------------------------------------------------------
    async def _on_session(self) -> None:
        self.ota.on_session()
        self.faces.on_session()
        self._state_due.set()
        self._new_session.set()
        self._wake_uploader.set()

    async def _upload(self) -> None:
        """Send pending events in id order, a batch at a time; a batch leaves the buffer once the
        platform acknowledged every event in it (evt_ack), and is sent again (same ids) after a
        timeout or on the next session otherwise."""
        while True:
            await self._wake_uploader.wait()
            self._wake_uploader.clear()
            attempts = 0
            while self.client.connected:
                batch = self.buffer.pending(self.config.upload_batch)
                if not batch:
                    break
                messages = [json.loads(event.record) for event in batch]
                self._unacked = {message["id"] for message in messages}
                self._batch_acked.clear()
                self._new_session.clear()
                if attempts:
                    self.stats.events_resent += len(messages)
                attempts += 1
                try:
                    for message in messages:
                        self.client.send(message)
                    await self.client.flush()
                except (NotConnected, TimeoutError):
                    break  # resent (same ids) after the next handshake
                if not await self._acknowledged():
                    continue  # no ack in time, or a new session: send the batch again
                attempts = 0
                self.buffer.mark_uploaded(batch[-1].id)
                self.stats.events_sent += len(batch)

    async def _acknowledged(self) -> bool:
        """Wait for the evt_ack of the batch in flight; False on timeout or a new session."""
        acked = asyncio.ensure_future(self._batch_acked.wait())
        renewed = asyncio.ensure_future(self._new_session.wait())
        try:
            await asyncio.wait(
                {acked, renewed},
                timeout=self.config.ack_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            acked.cancel()
            renewed.cancel()
        return self._batch_acked.is_set()

    async def _report_state(self) -> None:
        """Send ``state`` on change, on request, on each new session and periodically."""
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as the event is set, and the lock would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.state_interval_s):
                    await self._state_due.wait()
            self._state_due.clear()
            with contextlib.suppress(NotConnected):
                self.client.send(self.state_message())
                self.stats.states_sent += 1

    async def run(self) -> None:
        """Run until stop(); returns early (stats.stopped set) if the SE destroyed its keys."""
        workers = [
            asyncio.create_task(self._upload()),
            asyncio.create_task(self._report_state()),
            asyncio.create_task(self.ota.run()),
            asyncio.create_task(self.faces.run()),
            asyncio.create_task(self.access.run()),
        ]
        try:
            await self.client.run()
        except DeviceKeysDestroyed:
            self.stats.stopped = "keys_destroyed"
            log.error("lock %s: keys destroyed; the lock stops", self.client.device_id)
        finally:
            for task in workers:
                task.cancel()
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError, AnjuError):
                    await task

    async def stop(self) -> None:
        """Disconnect and let run() return."""
        await self.client.stop()
