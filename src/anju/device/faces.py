"""Face recognition on the reference lock or kiosk (docs/device-sdk.md, "Face biometrics").

Everything about a face happens here, on the device (L8e): the camera records the person doing a
random head-movement challenge drawn *here*, :mod:`anju.face` checks liveness and embeds the
neutral frame, and the embedding is turned into a protected template under the person's key.
Frames and embeddings live in local variables only; the platform gets a result (``bio_result``)
or a protected template (``bio_template``), never an image, and never sends one (L9b).

What the device keeps — per person their template version, projection key and protected
template, and the offers it is working on — is one sealed record (SE storage key, A/B slots,
power-loss safe). Withdrawing a person rewrites both slots, so no copy of their data survives
in either (flash wear-levelling aside, docs/secure-element.md).

Offers come as commands (:mod:`anju.protocol.biometrics`): ``bio.enrol`` and ``bio.load`` are
accepted at once (ack ok) and worked on in the background: the key (and for a load the template)
is fetched with ``bio_get``; an enrolment then captures with the camera. ``bio.drop`` deletes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from anju.device.exchange import Exchange, Offline, Uplink
from anju.device.storage import SlotStore
from anju.errors import AnjuError
from anju.face.engine import FaceEngine
from anju.face.liveness import (
    DEFAULT_LIVENESS,
    Challenge,
    Frame,
    LivenessChecker,
    LivenessPolicy,
    LivenessResult,
    new_challenge,
)
from anju.face.reasons import Reason
from anju.face.template import HAMMING_THRESHOLD, ProtectedTemplate, hamming_fraction, protect
from anju.protocol.biometrics import (
    DROP_COMMAND,
    ENROL_COMMAND,
    LOAD_COMMAND,
    b64,
    parse_command_args,
    unb64,
)
from anju.protocol.messages import canonical_json

log = logging.getLogger(__name__)

Result = tuple[bool, str | None]


class Camera(Protocol):
    """The device's camera and screen (or speaker)."""

    async def capture(self, challenge: Challenge) -> list[Frame]:
        """Prompt the person with the challenge's movements and record them: frames with their
        capture times on the device's clock (in memory; never written anywhere)."""
        ...


@dataclass(frozen=True)
class FaceOptions:
    """Limits of face recognition on one device."""

    max_templates: int = 32
    fetch_timeout_s: float = 10.0
    fetch_attempts: int = 5  # per offer within one session, then the offer is given up
    liveness: LivenessPolicy = DEFAULT_LIVENESS


@dataclass(frozen=True)
class FaceVerdict:
    """What a verification at the device found (no image, no embedding)."""

    matched: bool
    subject: str | None
    liveness: LivenessResult | None
    reasons: list[Reason]


@dataclass
class _Face:
    version: int
    key: bytes
    template: ProtectedTemplate


class FaceAgent:
    """Enrols, loads, withdraws and recognises faces on the device."""

    def __init__(
        self,
        store: SlotStore,
        uplink: Uplink,
        send_durably: Callable[[dict[str, Any]], None],
        *,
        camera: Camera | None,
        engine: Callable[[], FaceEngine],
        now_ms: Callable[[], int],
        options: FaceOptions | None = None,
    ) -> None:
        self.store = store
        self.options = options or FaceOptions()
        self._exchange = Exchange(
            uplink, timeout_s=self.options.fetch_timeout_s, attempts=self.options.fetch_attempts
        )
        self._send_durably = send_durably
        self._camera = camera
        self._engine = engine
        self._now = now_ms
        self._faces: dict[str, _Face] = {}
        self._jobs: dict[str, tuple[str, int]] = {}  # subject -> (command name, version)
        self._load()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one capture at a time

    # --- persistence -----------------------------------------------------------------------
    def _load(self) -> None:
        raw = self.store.read()
        if raw is None:
            return
        doc = json.loads(raw)
        for subject, face in doc["faces"].items():
            template = ProtectedTemplate.from_bytes(unb64(face["tpl"]))
            self._faces[subject] = _Face(int(face["version"]), unb64(face["key"]), template)
        self._jobs = {s: (str(name), int(v)) for s, (name, v) in doc["jobs"].items()}

    def _save(self, *, both_slots: bool = False) -> None:
        doc = {
            "faces": {
                subject: {
                    "version": face.version,
                    "key": b64(face.key),
                    "tpl": b64(bytes(face.template)),
                }
                for subject, face in self._faces.items()
            },
            "jobs": {subject: [name, version] for subject, (name, version) in self._jobs.items()},
        }
        payload = canonical_json(doc)
        self.store.write(payload)
        if both_slots:  # the older slot still held the previous record: overwrite it too
            self.store.write(payload)

    @property
    def subjects(self) -> dict[str, int]:
        """The people this device can recognise, with their template versions."""
        return {s: f.version for s, f in self._faces.items()}

    @property
    def pending(self) -> dict[str, tuple[str, int]]:
        """Offers being worked on: subject -> (command, version)."""
        return dict(self._jobs)

    # --- commands --------------------------------------------------------------------------
    def command(self, name: str, args: dict[str, Any]) -> Result:
        """Execute ``bio.enrol`` / ``bio.load`` (accepted now, done in the background) or
        ``bio.drop``; the command's result."""
        parsed = parse_command_args(name, args)
        if parsed is None:
            return False, "bio_bad_args"
        subject, version = parsed
        if name == DROP_COMMAND:
            self.drop(subject)
            return True, None
        assert version is not None
        if name == ENROL_COMMAND and self._camera is None:
            return False, "bio_no_camera"
        known = set(self._faces) | set(self._jobs)
        if subject not in known and len(known) >= self.options.max_templates:
            return False, "bio_store_full"
        self._jobs[subject] = (name, version)
        self._save()
        self._wake.set()
        return True, None

    def drop(self, subject: str) -> None:
        """Forget everything about the person (template, key, offers), in both slots."""
        self._faces.pop(subject, None)
        self._jobs.pop(subject, None)
        self._save(both_slots=True)

    # --- messages and sessions -------------------------------------------------------------
    def on_data(self, message: dict[str, Any]) -> None:
        """A ``bio_data`` answer (to the request we are waiting on)."""
        self._exchange.answer((message["subject"], message["version"]), message)

    def on_session(self) -> None:
        self._exchange.abandon()  # asked in a session that is gone
        self._wake.set()

    async def run(self) -> None:
        """Work on offers whenever there is something to do (until cancelled)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            for subject, (name, version) in list(self._jobs.items()):
                try:
                    await self._work(subject, name, version)
                except Offline:
                    break  # on_session wakes us
                except Exception:  # the device keeps working; retried on the next wake
                    log.exception("face offer for a subject failed")

    async def _work(self, subject: str, name: str, version: int) -> None:
        data = await self._fetch(subject, version)
        if self._jobs.get(subject) != (name, version):
            return  # withdrawn or replaced meanwhile
        if data is None or data["code"] is not None:
            log.warning("face offer given up: %s", "no answer" if data is None else data["code"])
            self._finish(subject)
            return
        key = unb64(data["key"])
        if name == LOAD_COMMAND:
            if data["tpl"] is None:
                self._finish(subject)
                return
            template = ProtectedTemplate.from_bytes(unb64(data["tpl"]))
            self._faces[subject] = _Face(version, key, template)
            self._finish(subject)
            return
        await self._enrol(subject, version, key)

    async def _fetch(self, subject: str, version: int) -> dict[str, Any] | None:
        request = {"t": "bio_get", "subject": subject, "version": version}
        return await self._exchange.ask(request, (subject, version))

    def _finish(self, subject: str) -> None:
        self._jobs.pop(subject, None)
        self._save()

    # --- capture ---------------------------------------------------------------------------
    async def _look(self) -> LivenessResult:
        """One challenge, recorded and checked here."""
        if self._camera is None:
            raise AnjuError("此设备没有摄像头 / this device has no camera")
        challenge = new_challenge(self._now(), self.options.liveness)
        frames = await self._camera.capture(challenge)
        checker = LivenessChecker(self._engine(), self.options.liveness)
        result = await asyncio.to_thread(checker.check, challenge, frames, self._now())
        del frames
        return result

    async def _enrol(self, subject: str, version: int, key: bytes) -> None:
        async with self._lock:
            result = await self._look()
        if not result.live or result.sample is None:
            self._report("enrol", subject, version, "refused", result)
        else:
            template = protect(result.sample.embedding, key)
            self._faces[subject] = _Face(version, key, template)
            self._send_durably(
                {
                    "t": "bio_template",
                    "id": uuid.uuid4().hex,
                    "at": self._now(),
                    "subject": subject,
                    "version": version,
                    "tpl": b64(bytes(template)),
                }
            )
        self._finish(subject)

    async def verify(self) -> FaceVerdict:
        """Whoever stands at the camera: live, and one of the people this device may recognise?
        Compared in the protected domain under each person's own key."""
        async with self._lock:
            result = await self._look()
        if not result.live or result.sample is None:
            self._report("verify", None, None, "refused", result)
            return FaceVerdict(False, None, result, list(result.reasons))
        best: tuple[float, str, int] | None = None
        for subject, face in self._faces.items():
            distance = hamming_fraction(face.template, protect(result.sample.embedding, face.key))
            if best is None or distance < best[0]:
                best = (distance, subject, face.version)
        if best is None or best[0] > HAMMING_THRESHOLD:
            self._report("verify", None, None, "no_match", result)
            return FaceVerdict(False, None, result, [])
        self._report("verify", best[1], best[2], "match", result)
        return FaceVerdict(True, best[1], result, [])

    def _report(
        self,
        kind: str,
        subject: str | None,
        version: int | None,
        outcome: str,
        result: LivenessResult,
    ) -> None:
        with contextlib.suppress(AnjuError):  # the outbox is the lock's sealed event buffer
            self._send_durably(
                {
                    "t": "bio_result",
                    "id": uuid.uuid4().hex,
                    "at": self._now(),
                    "kind": kind,
                    "subject": subject,
                    "version": version,
                    "result": outcome,
                    "liveness": "passed" if result.live else "failed",
                    "reasons": [r.value for r in result.reasons][:8],
                }
            )
