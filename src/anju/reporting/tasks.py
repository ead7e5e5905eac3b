"""Sending queued regulator reports: build, sign and envelope each at send time, POST it with
its idempotency key, retry with back-off until delivered, park it when refused.

One pass (:meth:`ReportSender.send_due`) leases the due reports and builds their envelopes in a
transaction (decryptions are audited there), posts them concurrently *outside* any transaction,
then records every attempt in a second one. A sender that dies mid-pass leaves leased rows that
fall due again when the lease ends: delivery is at-least-once and the regulator de-duplicates by
``Idempotency-Key`` (the report id), so the regulator keeps each report exactly once.

:meth:`run` wakes right after a commit of this process queued reports and otherwise polls every
``poll_seconds`` (reports queued by other processes, retries falling due).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import httpx

from anju.errors import AnjuError, ConfigurationError
from anju.kit.aio import wait_any
from anju.kit.crypto import SM2PublicKey
from anju.platform import Platform
from anju.reporting.rules import probe_delay_seconds, unavailable
from anju.reporting.service import REPORTS_QUEUED, AttemptResult, ReportingService
from anju.reporting.wire import IDEMPOTENCY_HEADER, PATH, REPORT_SIGNER, seal_report

logger = logging.getLogger("anju.reporting")

BATCH = 50
USER_AGENT = "anju-reporting/1"


def regulator_key(platform: Platform) -> SM2PublicKey:
    """The configured regulator public key (``configuration_error`` when unset or unreadable)."""
    path = platform.settings.regulator_public_key
    if path is None:
        raise ConfigurationError("regulator_public_key is not set (docs/reporting.md)")
    try:
        return SM2PublicKey.from_pem(path.read_bytes())
    except (OSError, AnjuError) as exc:
        raise ConfigurationError(f"regulator public key {path} is unusable: {exc}") from None


class ReportSender:
    """Delivers the regulator reports of one platform (see module docstring)."""

    def __init__(
        self, platform: Platform, *, batch: int = BATCH, poll_seconds: float = 1.0
    ) -> None:
        settings = platform.settings
        self.platform = platform
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.enabled = settings.regulator_enabled
        self.timeout = settings.regulator_timeout_seconds
        self.url = (settings.regulator_url or "").rstrip("/") + PATH
        if self.enabled and not settings.regulator_url:
            raise ConfigurationError("regulator_url is not set (docs/reporting.md)")
        self.recipient = regulator_key(platform) if self.enabled else None
        self._failed_probes = 0  # passes in a row that found the regulator down
        self._probe_at = platform.clock.now()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment
            headers={"User-Agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send_due(self) -> int:
        """Send due reports (up to ``batch``) once; how many were attempted.

        While the regulator is down (the last pass got no answer or a 5xx), a pass sends one
        report alone as a probe, and only when the probe delay is up
        (:func:`~anju.reporting.rules.probe_delay_seconds`); the other due reports are left as
        they are — not built (no PI decrypted), not attempted, not pushed back — so they all go
        out as soon as a probe gets through.
        """
        if self.recipient is None:
            return 0
        now = self.platform.clock.now()
        if self._failed_probes and now < self._probe_at:
            return 0
        async with self.platform.db.transaction() as session:
            claimed = [
                r.id
                for r in await ReportingService(self.platform, session).claim_due(
                    1 if self._failed_probes else self.batch, lease_seconds=self.timeout + 30
                )
            ]
        if not claimed:
            return 0
        results = await self._send(claimed)
        if any(unavailable(r.status_code) for r in results):
            self._failed_probes += 1
            self._probe_at = now + timedelta(seconds=probe_delay_seconds(self._failed_probes))
        else:
            self._failed_probes = 0
        async with self.platform.db.transaction() as session:
            await ReportingService(self.platform, session).record_results(results)
        return len(results)

    async def _send(self, report_ids: list[str]) -> list[AttemptResult]:
        """Build, seal and post ``report_ids`` (those whose payload cannot be built are parked
        and left out of the results)."""
        if not report_ids:
            return []
        assert self.recipient is not None
        signer = self.platform.keys.signer(REPORT_SIGNER)
        work: list[tuple[str, bytes]] = []
        async with self.platform.db.transaction() as session:
            service = ReportingService(self.platform, session)
            rows = await service.repo.reports_by_id(report_ids)
            reports = [rows[i] for i in report_ids if i in rows]
            payloads = await service.payloads_of(reports)
            for report in reports:
                payload = payloads[report.id]
                if isinstance(payload, AnjuError):
                    await service.park(report, payload.code)
                    continue
                work.append((report.id, seal_report(payload, signer, self.recipient)))
        return list(await asyncio.gather(*(self._post(rid, body) for rid, body in work)))

    async def _post(self, report_id: str, body: bytes) -> AttemptResult:
        started = time.monotonic()

        def result(status: int | None, error: str | None) -> AttemptResult:
            return AttemptResult(report_id, status, int((time.monotonic() - started) * 1000), error)

        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: report_id}
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return result(None, "timeout")
        except httpx.HTTPError as exc:
            return result(None, type(exc).__name__[:200])
        if response.is_success:
            return result(response.status_code, None)
        return result(response.status_code, _error_code(response))

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set (woken by commits of this process, else polling)."""
        woken = REPORTS_QUEUED.subscribe()
        try:
            while not stop.is_set():
                woken.clear()
                try:
                    sent = await self.send_due()
                except Exception:
                    logger.exception("regulator report pass failed; retrying")
                    sent = 0
                if sent < self.batch:
                    await wait_any(stop, woken, within=self.poll_seconds)
        finally:
            REPORTS_QUEUED.unsubscribe(woken)


def _error_code(response: httpx.Response) -> str:
    """The receiver's error code if it sent one (bounded), else ``http_<status>``."""
    try:
        code = response.json().get("error")
    except (ValueError, AttributeError):
        code = None
    return str(code)[:100] if isinstance(code, str) and code else f"http_{response.status_code}"
