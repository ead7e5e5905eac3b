"""Firmware updates on the device (docs/device-sdk.md, "Firmware updates").

``ota.update`` offers a package: its signed manifest, signature and signer certificate. The
agent checks the chain (signer certificate → the device CA the device trusts; signature → signer
key) and its own policy (product, size, no downgrade, ``min_from``) **before downloading
anything**; a refused offer is answered ``ack ok=false`` with the code and a ``fw_state
failed``, and the device keeps running what it runs. An accepted one is downloaded chunk by
chunk (``fw_get`` → ``fw_chunk``) into sealed staging storage, resumed after a reconnect or a
power cut, checked (size and SM3 against the signed manifest) and installed by an A/B switch.
Progress goes to the platform as ``fw_state`` downloading → verified → updating → updated (or
failed with a code); the final report is kept until the broker has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anju.device.exchange import Exchange, Offline, Uplink
from anju.device.ota_store import Active, Job, OtaStore
from anju.device.storage import StorageError
from anju.errors import AnjuError
from anju.kit.crypto import SM2PublicKey
from anju.protocol.errors import ProtocolError
from anju.protocol.firmware import (
    CHUNK_BYTES,
    MAX_IMAGE_BYTES,
    PACKAGE_ID,
    Manifest,
    Offer,
    SignedManifest,
    b64decode,
    check_image,
    check_offer,
    version_key,
)

log = logging.getLogger(__name__)

Result = tuple[bool, str | None]


@dataclass(frozen=True)
class OtaOptions:
    """Download behaviour."""

    chunk_timeout_s: float = 10.0
    chunk_attempts: int = 5  # per chunk within one session, then the update fails
    max_image_bytes: int = MAX_IMAGE_BYTES


class _Failed(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class OtaAgent:
    """Accepts offers, downloads, verifies and installs firmware; one update at a time."""

    def __init__(
        self,
        store: OtaStore,
        uplink: Uplink,
        *,
        product: str,
        factory_version: str,
        ca_public_key: SM2PublicKey,
        now_s: Callable[[], int],
        on_installed: Callable[[], None] | None = None,
        options: OtaOptions | None = None,
    ) -> None:
        self.store = store
        self.options = options or OtaOptions()
        self._uplink = uplink
        self._exchange = Exchange(
            uplink, timeout_s=self.options.chunk_timeout_s, attempts=self.options.chunk_attempts
        )
        self._product = product
        version_key(factory_version)  # a valid version, or ProtocolError now
        self._factory_version = factory_version
        self._ca = ca_public_key
        self._now_s = now_s
        self._on_installed = on_installed
        self._active: Active | None = store.boot()
        self._job: Job | None = store.read_job()
        self._wake = asyncio.Event()
        self.chunks_received = 0

    @property
    def running_version(self) -> str:
        """The version of the image that runs (the factory one until an update installed)."""
        return self._active.version if self._active is not None else self._factory_version

    @property
    def job(self) -> Job | None:
        return self._job

    # --- offers (the ota.update command) ---------------------------------------------------
    def offer(self, args: dict[str, Any]) -> Result:
        """Check an offer completely before anything is downloaded; the command's result."""
        package_id = args.get("pkg") if isinstance(args, dict) else None
        try:
            offer = Offer.from_args(args)
            manifest = offer.signed.verify(self._ca, now=self._now_s())
            check_offer(
                manifest,
                product=self._product,
                installed_version=self.running_version,
                max_image_bytes=self.options.max_image_bytes,
            )
        except ProtocolError as exc:
            if isinstance(package_id, str) and PACKAGE_ID.fullmatch(package_id):
                self._report(package_id, "failed", exc.code)
            return False, exc.code
        if version_key(manifest.version) == version_key(self.running_version):
            self._report(offer.package_id, "updated", None)  # already installed (a repeat)
            return True, None
        job = self._job
        if job is not None and job.id == offer.signed.id and job.report is None:
            job.package_id = offer.package_id
            self.store.write_job(job)
            self._wake.set()  # the same release again: carry on where we were
            return True, None
        if job is not None:  # another release replaces it (or its final report, undelivered)
            state, code = job.report or ("failed", "fw_superseded")
            self._report(job.package_id, state, code)
        self._start(offer)
        return True, None

    def _start(self, offer: Offer) -> None:
        self._exchange.abandon()  # stop waiting for the old package's chunk
        self.store.drop_chunks()
        signed = offer.signed
        self._job = Job(
            offer.package_id, signed.manifest_bytes, signed.certificate_bytes, signed.signature
        )
        self.store.write_job(self._job)
        self._wake.set()

    # --- messages and sessions -------------------------------------------------------------
    def on_chunk(self, message: dict[str, Any]) -> None:
        """A ``fw_chunk`` from the platform (answers the request we are waiting on)."""
        self._exchange.answer((message["pkg"], message["i"]), message)

    def on_session(self) -> None:
        """A new session: resume the download now and resend a final report."""
        self._exchange.abandon()  # the request went to a session that is gone
        self._wake.set()

    async def run(self) -> None:
        """Work on the update whenever there is something to do (until cancelled)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._work()
            except Offline:
                continue  # on_session wakes us
            except Exception:  # the lock keeps working; the job is retried on the next wake
                log.exception("firmware update step failed")

    # --- the update ------------------------------------------------------------------------
    async def _work(self) -> None:
        job = self._job
        if job is None:
            return
        if job.report is not None:
            await self._deliver_final(job)
            return
        signed = SignedManifest.parse(job.manifest, job.certificate, job.signature)
        manifest = signed.manifest
        try:
            if job.step == "downloading":
                self._report(job.package_id, "downloading", None)
                await self._download(job, manifest)
                self._check(job, manifest)
            if job.step == "verified":
                self._report(job.package_id, "verified", None)
                job.step = "updating"
                self.store.write_job(job)
            if job.step == "updating":
                self._report(job.package_id, "updating", None)
                self._install(job, manifest)
        except _Failed as failed:
            self._finish(job, "failed", failed.code)
        except StorageError:
            self._finish(job, "failed", "fw_storage_failed")
        await self._deliver_final(job)

    async def _download(self, job: Job, manifest: Manifest) -> None:
        while job.received < manifest.chunks:
            index = job.received
            expected = min(CHUNK_BYTES, manifest.size - index * CHUNK_BYTES)
            reply = await self._fetch(job.package_id, index)
            if self._job is not job:
                raise Offline  # replaced by a newer offer meanwhile: that one runs next
            if reply["code"] is not None:
                raise _Failed(str(reply["code"]))
            try:
                data = b64decode(reply["data"], max_bytes=CHUNK_BYTES)
            except ProtocolError:
                raise _Failed("fw_malformed") from None
            if len(data) != expected:
                raise _Failed("fw_digest_mismatch")
            self.store.put_chunk(job, index, data)
            job.received = index + 1
            self.store.write_job(job)  # chunk first, then the count: a crash refetches one
            self.chunks_received += 1

    async def _fetch(self, package_id: str, index: int) -> dict[str, Any]:
        request = {"t": "fw_get", "pkg": package_id, "i": index}
        reply = await self._exchange.ask(request, (package_id, index))
        if reply is None:
            raise _Failed("fw_download_failed")
        return reply

    def _check(self, job: Job, manifest: Manifest) -> None:
        """Size and SM3 of the staged image against the signed manifest."""
        try:
            check_image(manifest, self.store.image(job, manifest.chunks))
        except ProtocolError as exc:
            raise _Failed(exc.code) from None
        job.step = "verified"
        self.store.write_job(job)

    def _install(self, job: Job, manifest: Manifest) -> None:
        """A/B switch (see :class:`OtaStore`); idempotent after a power cut."""
        if not (self._active is not None and self._active.sm3 == manifest.sm3):
            image = self.store.image(job, manifest.chunks)
            check_image(manifest, image)  # verified again right before use
            self._active = self.store.install(image, manifest.version)
        self._finish(job, "updated", None)
        if self._on_installed is not None:
            self._on_installed()

    def _finish(self, job: Job, state: str, code: str | None) -> None:
        job.report = (state, code)
        self.store.write_job(job)
        self.store.drop_chunks()

    async def _deliver_final(self, job: Job) -> None:
        """Send the final report; the job is forgotten once the broker acknowledged it."""
        assert job.report is not None
        state, code = job.report
        try:
            self._uplink.send(
                {"t": "fw_state", "pkg": job.package_id, "state": state, "code": code}
            )
            await self._uplink.flush()
        except (AnjuError, TimeoutError):
            raise Offline from None  # again on the next session
        if self._job is job:
            self._job = None
            self.store.clear_job()

    def _report(self, package_id: str, state: str, code: str | None) -> None:
        """A progress report, best effort (the final one is :meth:`_deliver_final`'s)."""
        if self._uplink.connected:
            with contextlib.suppress(AnjuError):
                self._uplink.send(
                    {"t": "fw_state", "pkg": package_id, "state": state, "code": code}
                )
