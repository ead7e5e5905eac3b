"""Everything the gateway does with an uplink message: handshake, channel, events, state, acks.

One :class:`Ingest` per gateway process. :meth:`Ingest.on_message` is synchronous and never
raises: it checks the topic and frame, answers HELLOs (in tasks: they need the database),
decrypts DATA in arrival order, and hands the work that needs the database to

* the :class:`EventBatcher` (events: one INSERT … ON CONFLICT DO NOTHING per ≤ 100 ms or 500
  events, so a redelivered or resent event is stored once; once a batch is committed each device
  gets an ``evt_ack`` naming its events, and only then may it drop them), and
* one ordered work queue (session confirmations, state reports, command acks, security events),
  so what a device says is applied in the order it said it.

A DATA frame of a session this instance does not hold (it restarted, or the session ended) is
answered with a signed RESET (rate-limited per device and overall) so the device handshakes again
at once; at start-up the instance resets the sessions a previous process of it left behind.

Every refusal is counted per reason (:class:`GatewayCounters`) and per device; a device with
repeated failures (≥ 10 in 60 s by default) is flagged suspicious with an audit entry
``devices.security.repeated_failures``. One misbehaving device never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from sqlalchemy import select

from anju.access.credentials.delivery import Deliveries
from anju.audit import AuditLog
from anju.devices.ca import GATEWAY_SIGNER, GatewayCertificates, ca_public_key
from anju.devices.commands import CommandService
from anju.devices.commands.rules import check_result_code
from anju.devices.commands.service import DeviceAck
from anju.devices.lifecycle import HANDSHAKE_STATUSES
from anju.devices.models import Device
from anju.devices.service import DeviceService
from anju.errors import AnjuError
from anju.gateway import sessions
from anju.gateway.biometrics import FaceRelay
from anju.gateway.events import EventBatcher, EventRow
from anju.gateway.failures import FailureTracker
from anju.gateway.firmware import FirmwareServer
from anju.gateway.models import DeviceSecurityFlag
from anju.gateway.options import GatewayCounters, GatewayOptions
from anju.kit.crypto import random_bytes
from anju.platform import Platform
from anju.protocol.certificates import Certificate
from anju.protocol.channel import DuplicateFrame, SecureChannel, SessionTable
from anju.protocol.errors import ProtocolError
from anju.protocol.frames import (
    MAX_FRAME_BYTES,
    SESSION_ID_BYTES,
    FrameType,
    decode_data,
    frame_type,
)
from anju.protocol.handshake import GatewayHandshake, PendingSession
from anju.protocol.messages import MAX_ACK_IDS
from anju.protocol.reset import reset_frame
from anju.protocol.topics import down_topic, parse_up_topic

logger = logging.getLogger("anju.gateway")

#: Refusals that do not count towards "repeated failures": frames of a session this instance
#: no longer holds (normal after a restart or a move to another instance) and closed sessions.
BENIGN_REASONS = frozenset({"wrong_session", "session_closed"})
SECURITY_ACTION = "devices.security.repeated_failures"


class Publisher(Protocol):
    """Where the gateway sends downlink frames (the MQTT client; QoS 1)."""

    def publish(self, topic: str, payload: bytes) -> None: ...


ACK_BATCH = 200  # acks recorded per transaction at most


def _now_ms(platform: Platform) -> int:
    return int(platform.clock.now().timestamp() * 1000)


def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


# --- the ingest --------------------------------------------------------------------------------
Work = Callable[[], Awaitable[None]]


class Ingest:
    """The uplink side of one gateway process (see module docstring)."""

    def __init__(
        self,
        platform: Platform,
        publisher: Publisher,
        options: GatewayOptions | None = None,
        *,
        on_session: Callable[[str], None] | None = None,
    ) -> None:
        self.platform = platform
        self.options = options or GatewayOptions()
        self.counters = GatewayCounters()
        self.instance = self.options.instance
        self.sessions = SessionTable()
        self.failures = FailureTracker(
            self.options.failure_threshold, int(self.options.failure_window_seconds * 1000)
        )
        self._publisher = publisher
        self._on_session = on_session
        self._pending: dict[str, tuple[PendingSession, int]] = {}
        self._last_seen: dict[str, int] = {}
        # Sessions whose device_sessions row is committed: only these get commands.
        self._claimed: dict[str, bytes] = {}
        self._confirming: set[str] = set()  # devices whose session confirmation is queued
        self._org: dict[str, str | None] = {}
        self._certificates = GatewayCertificates(
            platform.keys, platform.clock, origin=platform.settings.audit_origin
        )
        prefix = self.instance.to_bytes(2, "big")

        def session_random(n: int) -> bytes:
            # The handshake draws the session id with one call of exactly 8 bytes (and 16/32
            # for Np/Kp): the instance number goes into its first two bytes (routing).
            if n == SESSION_ID_BYTES:
                return prefix + random_bytes(n - len(prefix))
            return random_bytes(n)

        self._session_random = session_random
        self._handshake_cert = self._certificates.current()
        self._handshake = self._new_handshake()
        self._events = EventBatcher(platform, self.options, self.counters, self._ack_stored)
        self.firmware = FirmwareServer(platform, self.options.firmware)
        self.faces = FaceRelay(platform, self.options.biometrics)
        self._last_reset: dict[str, int] = {}
        self._closing = False
        self._reset_budget = (0, 0)  # (second, RESETs sent in it)
        self._work: asyncio.Queue[Work] = asyncio.Queue()
        self._acks: list[DeviceAck] = []  # acks waiting for the next _record_acks
        self._worker: asyncio.Task[None] | None = None
        self._hello_slots = asyncio.Semaphore(self.options.max_concurrent_handshakes)
        self._tasks: set[asyncio.Task[None]] = set()
        self._audit = AuditLog(platform)

    def _new_handshake(self) -> GatewayHandshake:
        keys = self.platform.keys
        return GatewayHandshake(
            self._handshake_cert,
            keys.signer(GATEWAY_SIGNER),
            ca_public_key(keys),
            self._root_key,
            now_ms=lambda: _now_ms(self.platform),
            random_bytes=self._session_random,
            options=self.options.channel,
        )

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the ordered work queue (call inside the running loop)."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._work_loop(), name="anju-gateway-work")

    async def drain(self) -> None:
        """Wait for handshakes in flight, queued work and queued events (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._work.join()
        await self._events.drain()

    async def stop(self) -> None:
        """Finish what was received, then stop (keys in memory are dropped)."""
        await self.drain()
        self._closing = True  # the broker connection is gone: no more evt_acks
        await self._events.stop()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        # Sessions die with this process: release them and show their devices offline now,
        # rather than after the idle timeout (unless another instance took a device meanwhile).
        for device_id, session_id in list(self._claimed.items()):
            try:
                await self._end_session(device_id, session_id)
            except Exception:
                logger.exception("could not release the session of %s at shutdown", device_id)
        for device_id in list(self._last_seen):
            self.sessions.remove(device_id)
        self._last_seen.clear()
        self._claimed.clear()
        self._pending.clear()

    async def abort(self) -> None:
        """Stop at once, storing and releasing nothing: what a killed process leaves behind
        (fault-injection tests; the next process of this instance resets the sessions)."""
        self._closing = True
        tasks = [self._worker, self._events.abort(), *self._tasks]
        for task in tasks:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)
        self._worker = None
        self._tasks.clear()

    def channel(self, device_id: str) -> SecureChannel | None:
        """The confirmed session of ``device_id`` held here, if any."""
        return self.sessions.get(device_id)

    def held_devices(self) -> list[str]:
        """Devices whose confirmed session this instance holds (and has recorded)."""
        return list(self._claimed)

    def holds(self, device_id: str) -> bool:
        """This instance holds ``device_id``'s confirmed session."""
        return device_id in self._claimed

    def publish(self, topic: str, payload: bytes) -> None:
        self._publisher.publish(topic, payload)

    # --- the entry point -----------------------------------------------------------------
    def on_message(self, topic: str, payload: bytes) -> None:
        """Handle one uplink MQTT message. Never raises."""
        self.counters.messages += 1
        device_id: str | None = None
        try:
            device_id, instance = parse_up_topic(topic)
            if not isinstance(payload, bytes):
                payload = bytes(payload)
            if len(payload) > MAX_FRAME_BYTES:
                raise ProtocolError("frame_too_large", "frame longer than 65536 bytes")
            kind = frame_type(payload)
            if kind == FrameType.HELLO:
                if instance is not None:
                    raise ProtocolError("topic_invalid", "HELLO goes to the …/up topic")
                self._spawn(self._hello(device_id, payload))
            elif kind == FrameType.DATA:
                if instance != self.instance:
                    raise ProtocolError("topic_invalid", "DATA goes to …/up/{instance}")
                self._data(device_id, payload)
            else:
                raise ProtocolError("handshake_failed", "devices send only HELLO and DATA")
        except ProtocolError as exc:
            self.reject(device_id, exc.code)
        except Exception:
            logger.exception("gateway: unexpected error handling a message")
            self.reject(device_id, "internal_error")

    def reject(self, device_id: str | None, reason: str) -> None:
        """Count a refused message, per reason and per device; escalate repeated failures."""
        self.counters.rejected[reason] += 1
        if device_id is None or reason in BENIGN_REASONS or reason == "internal_error":
            return
        reasons = self.failures.add(device_id, reason, _now_ms(self.platform))
        if reasons is not None:
            flagged = device_id
            self._enqueue(lambda: self._flag_device(flagged, reasons))

    # --- handshake -----------------------------------------------------------------------
    async def _root_key(self, certificate: Certificate) -> bytes:
        async with self.platform.db.transaction() as session:
            return await DeviceService(self.platform, session).root_key_for_handshake(certificate)

    async def _hello(self, device_id: str, frame: bytes) -> None:
        async with self._hello_slots:
            self.counters.hellos += 1
            try:
                current = self._certificates.current()
                if current is not self._handshake_cert:  # renewed gateway certificate
                    self._handshake_cert = current
                    self._handshake = self._new_handshake()
                pending, welcome = await self._handshake.respond_async(frame, device_id=device_id)
            except ProtocolError as exc:
                self.reject(device_id, exc.code)
                return
            self._pending[device_id] = (pending, _now_ms(self.platform))
            self.publish(down_topic(device_id), welcome)

    # --- DATA ----------------------------------------------------------------------------
    def _data(self, device_id: str, frame: bytes) -> None:
        data = decode_data(frame)
        waiting = self._pending.get(device_id)
        if waiting is not None and data.session_id == waiting[0].session_id:
            self._confirm(device_id, waiting[0], frame)
            return
        channel = self.sessions.get(device_id)
        if channel is None or channel.session_id != data.session_id:
            self._reset(device_id, data.session_id)
            raise ProtocolError("wrong_session", "no such session on this instance")
        try:
            message = channel.open(frame, device_id=device_id)
        except DuplicateFrame:
            self.counters.duplicates += 1
            return
        now = _now_ms(self.platform)
        self._last_seen[device_id] = now
        self.counters.frames_accepted += 1
        kind = message["t"]
        if kind == "evt":
            self.counters.events_received += 1
            self._events.add(
                EventRow(
                    device_id=device_id,
                    event_id=message["id"],
                    org_id=self._org.get(device_id),
                    kind=message["kind"],
                    at_ms=message["at"],
                    received_ms=now,
                    data=json.dumps(message["data"], sort_keys=True, separators=(",", ":")),
                    session_id=channel.session_id.hex(),
                    seq=data.seq,
                )
            )
        elif kind == "state":
            self.counters.states += 1
            self._enqueue(lambda: self._state(device_id, message))
        elif kind == "ack":
            self.counters.acks += 1
            self._acks.append(DeviceAck(device_id, message["id"], message["ok"], message["code"]))
            if len(self._acks) == 1:  # the first since the last batch was taken
                self._enqueue(self._record_acks)
        elif kind == "fw_get":
            self._firmware_get(device_id, channel, message)
        elif kind == "fw_state":
            self.counters.fw_reports += 1
            self._enqueue(lambda: self.firmware.report(device_id, message))
        elif kind == "bio_get":
            self._biometric_get(device_id, channel, message)
        elif kind in ("bio_template", "bio_result"):
            self.counters.bio_reports += 1
            self._enqueue(lambda: self._biometric_report(device_id, message))
        else:  # a second CONFIRM
            raise ProtocolError("unknown_message_type", "CONFIRM only once per session")

    def _firmware_get(
        self, device_id: str, channel: SecureChannel, message: dict[str, Any]
    ) -> None:
        """Answer ``fw_get`` with a ``fw_chunk`` in the same session (rate-limited per device:
        refused requests are dropped and counted, the device asks again)."""
        if not self.firmware.admit(device_id):
            self.reject(device_id, "fw_rate_limited")
            return

        async def answer() -> None:
            reply = await self.firmware.chunk(device_id, message["pkg"], message["i"])
            if channel.closed or self._closing:
                return  # the session ended meanwhile: the device asks again in its next one
            self.publish(down_topic(device_id), channel.seal(reply))
            if reply["data"] is None:
                self.counters.fw_not_offered += 1
            else:
                self.counters.fw_chunks_sent += 1

        self._spawn(answer())

    def _biometric_get(
        self, device_id: str, channel: SecureChannel, message: dict[str, Any]
    ) -> None:
        """Answer ``bio_get`` with ``bio_data`` in the same session (rate-limited per device;
        an answer without data counts towards the device's repeated failures)."""
        if not self.faces.admit(device_id):
            self.reject(device_id, "bio_rate_limited")
            return

        async def answer() -> None:
            try:
                reply = await self.faces.data(device_id, message)
            except Exception:  # the device asks again after its timeout
                logger.exception("answering bio_get of %s failed", device_id)
                self.counters.rejected["internal_error"] += 1
                return
            if channel.closed or self._closing:
                return  # the device asks again in its next session
            self.publish(down_topic(device_id), channel.seal(reply))
            if reply["code"] is None:
                self.counters.bio_data_sent += 1
            else:
                self.counters.bio_not_offered += 1
                self.reject(device_id, reply["code"])

        self._spawn(answer())

    async def _biometric_report(self, device_id: str, message: dict[str, Any]) -> None:
        """Store a ``bio_template`` / log a ``bio_result``, then ``bio_ack`` it in the device's
        current session (without one the device resends, and the resend is acknowledged)."""
        ack = await self.faces.receive(device_id, message)
        if ack["code"] is not None:
            self.reject(device_id, ack["code"])
        channel = self.sessions.get(device_id)
        if channel is None or self._closing:
            return
        self.publish(down_topic(device_id), channel.seal(ack))
        self.counters.bio_acks_sent += 1

    def _ack_stored(self, rows: list[EventRow]) -> None:
        """Tell each device which of its events are now stored (``evt_ack``), in the session
        this instance holds; a device without one resends and gets its ack then."""
        if self._closing:
            return
        by_device: dict[str, list[str]] = {}
        for row in rows:
            by_device.setdefault(row.device_id, []).append(row.event_id)
        for device_id, ids in by_device.items():
            channel = self.sessions.get(device_id)
            if channel is None:
                continue
            for start in range(0, len(ids), MAX_ACK_IDS):
                message = {"t": "evt_ack", "ids": ids[start : start + MAX_ACK_IDS]}
                self.publish(down_topic(device_id), channel.seal(message))
                self.counters.evt_acks_sent += 1

    def _reset(self, device_id: str, session_id: bytes) -> None:
        """Send a signed RESET for a session this instance does not hold (rate-limited)."""
        now = _now_ms(self.platform)
        last = self._last_reset.get(device_id)
        if last is not None and now - last < self.options.reset_interval_seconds * 1000:
            return
        second, sent = self._reset_budget
        if now // 1000 != second:
            second, sent = now // 1000, 0
        if sent >= self.options.max_resets_per_second:
            return
        self._reset_budget = (second, sent + 1)
        self._last_reset[device_id] = now
        frame = reset_frame(self.platform.keys.signer(GATEWAY_SIGNER), device_id, session_id, now)
        self.publish(down_topic(device_id), frame)
        self.counters.resets_sent += 1

    async def reset_orphans(self) -> int:
        """Reset and release the sessions a previous process of this instance left behind (it
        was killed): their devices handshake again at once. The number of sessions."""
        async with self.platform.db.transaction() as session:
            rows = await sessions.held_by(session, self.instance)
        orphans = {d: bytes.fromhex(s) for d, s in rows.items() if d not in self._claimed}
        for device_id, session_id in orphans.items():
            self._reset(device_id, session_id)
            self._enqueue(partial(self._end_session, device_id, session_id))
        return len(orphans)

    def _confirm(self, device_id: str, pending: PendingSession, frame: bytes) -> None:
        # A refused CONFIRM leaves the pending handshake to PendingSession's own rules (a forged
        # frame cannot end it); a new HELLO or the sweep replaces or drops it.
        channel = pending.on_confirm(frame)
        self._pending.pop(device_id, None)
        self.sessions.install(channel)  # a previous session of the device ends here
        self._last_seen[device_id] = _now_ms(self.platform)
        self.counters.handshakes += 1
        self._confirm_later(device_id, channel.session_id)

    def _confirm_later(self, device_id: str, session_id: bytes) -> None:
        """Queue the database side of a confirmed session (claim the row, mark online)."""
        self._confirming.add(device_id)
        self._enqueue(lambda: self._session_confirmed(device_id, session_id))

    async def _session_confirmed(self, device_id: str, session_id: bytes) -> None:
        try:
            async with self.platform.db.transaction() as session:
                now = self.platform.clock.now()
                await sessions.claim(session, device_id, self.instance, session_id, now)
                device = await DeviceService(self.platform, session).mark_online(device_id)
                self._org[device_id] = device.org_id
        finally:
            # On failure (database away) the sweep's reconcile queues it again.
            self._confirming.discard(device_id)
        current = self.sessions.get(device_id)
        if current is None or current.session_id != session_id:
            return  # replaced or ended while the row was written
        self._claimed[device_id] = session_id
        if self._on_session is not None:
            self._on_session(device_id)
        self._enqueue(lambda: self._reconcile_access(device_id))

    async def _reconcile_access(self, device_id: str) -> None:
        """A lock is back: queue again the credentials and removals it still has to get (their
        commands may have expired while it was away — a lock offline for weeks converges)."""
        async with self.platform.db.transaction() as session:
            await Deliveries(self.platform, session).reconcile(device_id)

    async def _state(self, device_id: str, message: dict[str, Any]) -> None:
        extra = message.get("extra")
        async with self.platform.db.transaction() as session:
            await DeviceService(self.platform, session).record_state(
                device_id,
                battery_pct=message["battery"],
                signal_dbm=message["signal"],
                firmware_version=message["firmware"],
                reported=extra if isinstance(extra, dict) else None,
            )

    async def _record_acks(self) -> None:
        """Record every ack that arrived since the last batch in one transaction (one audit
        append for all): one transaction per ack capped the gateway at a few hundred per second."""
        batch, self._acks = self._acks[:ACK_BATCH], self._acks[ACK_BATCH:]
        if self._acks:
            self._enqueue(self._record_acks)
        acks = []
        for ack in batch:
            try:
                check_result_code(ack.code)
            except AnjuError as exc:
                self.counters.rejected[f"refused.{exc.code}"] += 1
                continue
            acks.append(ack)
        if acks:
            async with self.platform.db.transaction() as session:
                await CommandService(self.platform, session).record_acks(acks)

    # --- security ------------------------------------------------------------------------
    async def _flag_device(self, device_id: str, reasons: Counter[str]) -> None:
        now = self.platform.clock.now()
        summary = ",".join(f"{r}:{n}" for r, n in reasons.most_common())[:200]
        async with self.platform.db.transaction() as session:
            flag = await session.get(DeviceSecurityFlag, device_id)
            if flag is None:
                session.add(
                    DeviceSecurityFlag(
                        device_id=device_id,
                        suspicious_since=now,
                        last_flagged_at=now,
                        last_reason=reasons.most_common(1)[0][0],
                        times_flagged=1,
                    )
                )
            else:
                flag.last_flagged_at = now
                flag.last_reason = reasons.most_common(1)[0][0]
                flag.times_flagged += 1
            device = await session.get(Device, device_id)
            await self._audit.record(
                session,
                action=SECURITY_ACTION,
                actor="system",
                org_id=device.org_id if device is not None else None,
                target=f"device:{device_id}",
                outcome="failure",
                details={
                    "failures": sum(reasons.values()),
                    "window_seconds": int(self.options.failure_window_seconds),
                    "reasons": summary,
                    "instance": self.instance,
                    "known_device": device is not None,
                },
            )
        self.counters.security_events += 1
        logger.warning(
            "device %s flagged suspicious after repeated failures (%s)", device_id, summary
        )

    # --- timeouts ------------------------------------------------------------------------
    def expired_sessions(self) -> list[tuple[str, bytes]]:
        """Forget sessions idle past the timeout; (device id, session id) of each."""
        now = _now_ms(self.platform)
        limit = int(self.options.idle_timeout_seconds * 1000)
        ended = []
        for device_id, seen in list(self._last_seen.items()):
            if now - seen >= limit:
                channel = self.sessions.get(device_id)
                if channel is not None:
                    ended.append((device_id, channel.session_id))
                self.forget(device_id)
        window = self.options.channel.time_window_ms
        for device_id, (_, started) in list(self._pending.items()):
            if now - started > window:
                del self._pending[device_id]  # the device never confirmed
        self.failures.forget_idle(now)
        reset_limit = now - int(self.options.reset_interval_seconds * 1000)
        for device_id, at in list(self._last_reset.items()):
            if at < reset_limit:
                del self._last_reset[device_id]
        return ended

    def forget(self, device_id: str) -> None:
        """Drop a device's session here (it moved to another instance, or was revoked)."""
        self._last_seen.pop(device_id, None)
        self._claimed.pop(device_id, None)
        self.sessions.remove(device_id)
        self.firmware.forget(device_id)
        self.faces.forget(device_id)

    async def sweep(self) -> None:
        """End idle sessions (release rows, mark offline) and drop sessions that are not ours."""
        for device_id, session_id in self.expired_sessions():
            self.counters.sessions_ended += 1
            self._enqueue(partial(self._end_session, device_id, session_id))
        await self.reconcile()
        await self.firmware.tick()

    async def reconcile(self) -> None:
        """Record sessions whose confirmation could not be stored (database away); forget
        sessions whose row names another instance or whose device may no longer connect
        (suspended, revoked, decommissioned), releasing the row in the latter case."""
        for device_id, session_id in self.sessions.current().items():
            if self._claimed.get(device_id) != session_id and device_id not in self._confirming:
                self._confirm_later(device_id, session_id)
        claimed = dict(self._claimed)
        if not claimed:
            return
        ids = list(claimed)
        async with self.platform.db.transaction() as session:
            rows: dict[str, str] = {}
            statuses: dict[str, str] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows.update(await sessions.held_by(session, self.instance, chunk))
                query = select(Device.id, Device.status).where(Device.id.in_(chunk))
                statuses.update({r.id: r.status for r in await session.execute(query)})
        for device_id, session_id in claimed.items():
            if self._claimed.get(device_id) != session_id:
                continue  # changed meanwhile
            if rows.get(device_id) != session_id.hex():
                self.forget(device_id)  # another instance holds the device now
                self.counters.sessions_ended += 1
            elif statuses.get(device_id) not in HANDSHAKE_STATUSES:
                self.forget(device_id)
                self.counters.sessions_ended += 1
                self._enqueue(partial(self._end_session, device_id, session_id))

    async def _end_session(self, device_id: str, session_id: bytes) -> None:
        async with self.platform.db.transaction() as session:
            if await sessions.release(session, device_id, session_id):
                device = await session.get(Device, device_id)
                if device is not None and device.online:
                    await DeviceService(self.platform, session).mark_offline(device_id)

    # --- plumbing ------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _enqueue(self, work: Work) -> None:
        self._work.put_nowait(work)
        self.start()

    async def _work_loop(self) -> None:
        while True:
            work = await self._work.get()
            try:
                await work()
            except AnjuError as exc:
                logger.warning("gateway work refused: %s [%s]", exc.message, exc.code)
                self.counters.rejected[f"refused.{exc.code}"] += 1
            except Exception:
                logger.exception("gateway work failed")
                self.counters.rejected["internal_error"] += 1
            finally:
                self._work.task_done()
