"""Regulator reports: queueing in the caller's transaction, building the minimised payload at
send time, and delivery bookkeeping (docs/reporting.md).

``queue_*`` write outbox rows holding references only, so a report is sent if and only if the
check-in (or check-out) that caused it commits; the sender (:mod:`anju.reporting.tasks`) is
woken right after that commit. The payload — the only place the guest's name and document
number appear in clear — is built by :meth:`ReportingService.payload_of` when the report is
sent, each decryption audited with the purpose ``regulator_report``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.alarms.service import raise_platform_alarm
from anju.audit import AuditLog
from anju.db import new_id
from anju.errors import AnjuError, Conflict, Forbidden, InvalidInput, NotFound
from anju.kit.wakeup import Wakeup
from anju.people.models import Person
from anju.platform import Platform
from anju.privacy.inventory import Purpose
from anju.privacy.vault import PIVault, SealedValue
from anju.reporting.models import Report, ReportAttempt, ReportedUnlock
from anju.reporting.repository import ReportingRepository
from anju.reporting.rules import (
    UNLOCKS_PER_REPORT,
    ReportKind,
    ReportStatus,
    check_aware,
    parks,
    retry_delay_seconds,
    shanghai_time,
)
from anju.reporting.wire import PAYLOAD_FORMAT

#: Wakes the sender of this process after a commit that queued reports.
REPORTS_QUEUED = Wakeup("reporting")
#: The audit actor of the sender (decryptions at send time are attributed to it).
SENDER_ACTOR = "system:regulator-reporting"
PARKED_ALARM = "regulator_report_parked"


class ReportPayloadUnavailable(Conflict):
    """The report's subject was deleted (crypto-shredded) before it could be sent."""

    code = "report_payload_unavailable"


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP attempt of a report gave."""

    report_id: str
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def not_found() -> NotFound:
    return NotFound("报送记录不存在 / no such regulator report")


class ReportingService:
    """Regulator reports of one transaction (the caller commits)."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self.platform = platform
        self.session = session
        self.clock = platform.clock
        self.repo = ReportingRepository(session)
        self.audit = AuditLog(platform)
        self.vault = PIVault(platform)

    # --- queueing (called by check-in / check-out and the unlock report job) ---------------
    async def queue_check_in(
        self, *, org_id: str, stay_id: str, subject_id: str, room_id: str, at: datetime
    ) -> Report:
        """Queue the check-in report of one guest of a stay (idempotent per stay and guest)."""
        return await self._queue_stay_event(
            ReportKind.CHECK_IN, org_id, stay_id, subject_id, room_id, at
        )

    async def queue_check_out(
        self, *, org_id: str, stay_id: str, subject_id: str, room_id: str, at: datetime
    ) -> Report:
        """Queue the check-out report of one guest of a stay (idempotent per stay and guest)."""
        return await self._queue_stay_event(
            ReportKind.CHECK_OUT, org_id, stay_id, subject_id, room_id, at
        )

    async def queue_unlocks(self, *, org_id: str, since: datetime, until: datetime) -> int:
        """Queue the granted unlocks of ``org_id`` with lock time in [since, until) that no
        report carries yet (500 per report); the number of unlock records queued."""
        check_aware(since, "since")
        check_aware(until, "until")
        if until <= since:
            raise InvalidInput("时间窗口无效 / until must be after since")
        ids = list(await self.repo.unreported_unlocks(org_id, since, until))
        for start in range(0, len(ids), UNLOCKS_PER_REPORT):
            chunk = ids[start : start + UNLOCKS_PER_REPORT]
            report = self._new_report(
                ReportKind.UNLOCKS,
                org_id,
                dedup_key=f"unlocks:{chunk[0]}:{len(chunk)}",
                window_since=since,
                window_until=until,
                unlock_ids=json.dumps(chunk),
                record_count=len(chunk),
            )
            self.session.add(report)
            await self.session.flush()  # the report row before the rows that refer to it
            self.session.add_all(ReportedUnlock(unlock_id=i, report_id=report.id) for i in chunk)
            await self._audit_queued(report)
        if ids:
            await self.session.flush()
            REPORTS_QUEUED.after_commit(self.session)
        return len(ids)

    async def _queue_stay_event(
        self,
        kind: ReportKind,
        org_id: str,
        stay_id: str,
        subject_id: str,
        room_id: str,
        at: datetime,
    ) -> Report:
        check_aware(at, "at")
        for name, value in (("stay_id", stay_id), ("subject_id", subject_id), ("room_id", room_id)):
            if not 0 < len(value) <= 64:
                raise InvalidInput(f"{name} 无效 / {name} must be 1–64 characters")
        key = f"{kind.value}:{stay_id}:{subject_id}"
        existing = await self.repo.by_dedup_key(key)
        if existing is not None:
            return existing
        if await self.repo.person_of(org_id, subject_id) is None:
            raise NotFound(
                "该机构没有此人 / no such person in this organisation",
                details={"subject_id": subject_id},
            )
        report = self._new_report(
            kind,
            org_id,
            dedup_key=key,
            stay_id=stay_id,
            subject_id=subject_id,
            room_id=room_id,
            occurred_at=at,
            record_count=1,
        )
        self.session.add(report)
        await self.session.flush()
        await self._audit_queued(report)
        REPORTS_QUEUED.after_commit(self.session)
        return report

    def _new_report(self, kind: ReportKind, org_id: str, **fields: Any) -> Report:
        now = self.clock.now()
        return Report(
            id=new_id(),
            org_id=org_id,
            kind=kind.value,
            status=ReportStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            **fields,
        )

    async def _audit_queued(self, report: Report) -> None:
        await self.audit.record(
            self.session,
            action="reporting.report.queued",
            actor=SENDER_ACTOR,
            org_id=report.org_id,
            target=f"regulator_report:{report.id}",
            details={"kind": report.kind, "records": report.record_count},
        )

    # --- the payload (built at send time) --------------------------------------------------
    async def payload_of(self, report: Report) -> dict[str, Any]:
        """The minimised payload of ``report`` (docs/reporting.md lists every field and why)."""
        built = (await self.payloads_of([report]))[report.id]
        if isinstance(built, AnjuError):
            raise built
        return built

    async def payloads_of(self, reports: Sequence[Report]) -> dict[str, dict[str, Any] | AnjuError]:
        """The payload of each report, or why it cannot be built.

        Check-in reports carry the guest's name and document, decrypted here for the purpose
        ``regulator_report`` — all of a batch in one go, each decryption its own audit entry;
        check-out and unlock reports refer to the guest by the pseudonymous ``subject_id`` the
        check-in report introduced.
        """
        out: dict[str, dict[str, Any] | AnjuError] = {}
        identities: list[tuple[dict[str, Any], Person, str]] = []
        for report in reports:
            body = await self._skeleton(report)
            out[report.id] = body
            if report.kind != ReportKind.CHECK_IN:
                continue
            assert report.subject_id is not None
            person = await self.repo.person_of(report.org_id, report.subject_id)
            if person is None or person.status != "active":
                out[report.id] = ReportPayloadUnavailable(
                    "住客信息已删除，无法报送 / the guest's data was deleted before sending"
                )
                continue
            identities.append((body, person, report.org_id))
        if identities:
            await self._fill_identities(identities, out)
        return out

    async def _fill_identities(
        self,
        identities: list[tuple[dict[str, Any], Person, str]],
        out: dict[str, dict[str, Any] | AnjuError],
    ) -> None:
        """Decrypt name and document of every check-in of a batch (one audit append); when the
        batch fails, each report on its own, so one bad row does not hold back the others."""

        async def opened(group: list[tuple[dict[str, Any], Person, str]]) -> list[str]:
            values = [
                SealedValue(f"person.{column}", person.subject_id, person.id, sealed, org_id)
                for _, person, org_id in group
                for column, sealed in (
                    ("name", person.name),
                    ("document_number", person.document_number),
                )
                if sealed is not None
            ]
            if len(values) != 2 * len(group):
                raise ReportPayloadUnavailable(
                    "住客信息不完整 / the guest's identity is incomplete"
                )
            return await self.vault.open_many(
                self.session, values, purpose=Purpose.REGULATOR_REPORT, actor=SENDER_ACTOR
            )

        try:
            groups = [(identities, await opened(identities))]
        except AnjuError:
            groups = []
            for one in identities:
                try:
                    groups.append(([one], await opened([one])))
                except AnjuError as exc:
                    out[one[0]["report_id"]] = exc
        for group, clear in groups:
            for i, (body, person, _) in enumerate(group):
                body["guest"] = {
                    "subject_id": person.subject_id,
                    "name": clear[2 * i],
                    "document_type": person.document_type,
                    "document_number": clear[2 * i + 1],
                }

    async def _skeleton(self, report: Report) -> dict[str, Any]:
        """Everything of the payload but the guest's identity."""
        body: dict[str, Any] = {
            "format": PAYLOAD_FORMAT,
            "report_id": report.id,
            "kind": report.kind,
            "site": {"org_id": report.org_id},
        }
        if report.kind == ReportKind.UNLOCKS:
            assert report.window_since is not None
            assert report.window_until is not None
            ids: list[str] = json.loads(report.unlock_ids or "[]")
            records = await self.repo.unlocks(ids)
            body["window"] = {
                "since": shanghai_time(report.window_since),
                "until": shanghai_time(report.window_until),
            }
            body["unlocks"] = [
                {
                    "record_id": r.id,
                    "lock_id": r.device_id,
                    "place": {"kind": r.place_kind, "ref": r.place_ref},
                    "subject_id": r.subject,
                    "method": r.method,
                    "at": shanghai_time(r.at),
                }
                for r in records
            ]
            # Records deleted by retention before sending are named, not silently dropped.
            body["unavailable_record_ids"] = sorted(set(ids) - {r.id for r in records})
            return body
        assert report.occurred_at is not None
        body["stay_id"] = report.stay_id
        body["room"] = {"room_id": report.room_id}
        body["at"] = shanghai_time(report.occurred_at)
        if report.kind == ReportKind.CHECK_OUT:
            body["guest"] = {"subject_id": report.subject_id}
        return body

    # --- delivery (the sender) -------------------------------------------------------------
    async def claim_due(self, limit: int, lease_seconds: float) -> Sequence[Report]:
        """Due reports, leased for ``lease_seconds`` (no other sender sends them meanwhile)."""
        now = self.clock.now()
        due = await self.repo.due(now, limit)
        for report in due:
            report.next_attempt_at = now + timedelta(seconds=lease_seconds)
        await self.session.flush()
        return due

    async def park(self, report: Report, error: str, status_code: int | None = None) -> None:
        """Stop retrying ``report`` (kept, alarmed, retried only by an operator)."""
        report.status = ReportStatus.PARKED.value
        report.last_error = error[:200]
        report.last_status_code = status_code
        await self.session.flush()
        await raise_platform_alarm(
            self.platform,
            self.session,
            org_id=report.org_id,
            kind=PARKED_ALARM,
            details={"report_id": report.id, "kind": report.kind, "error": error[:100]},
        )
        await self.audit.record(
            self.session,
            action="reporting.report.parked",
            actor=SENDER_ACTOR,
            org_id=report.org_id,
            target=f"regulator_report:{report.id}",
            outcome="failure",
            details={"error": error[:100], "status_code": status_code or 0},
        )

    async def record_results(self, results: Sequence[AttemptResult]) -> None:
        """Log each attempt: delivered, retried later with back-off, or parked on a refusal."""
        now = self.clock.now()
        cap = self.platform.settings.regulator_retry_cap_seconds
        rows = await self.repo.reports_by_id([r.report_id for r in results])
        for result in results:
            report = rows.get(result.report_id)
            if report is None or report.status != ReportStatus.PENDING:
                continue
            report.attempts += 1
            report.last_status_code = result.status_code
            report.last_error = result.error
            if result.ok:
                report.status = ReportStatus.DELIVERED.value
                report.delivered_at = now
                outcome = "delivered"
            elif parks(result.status_code):
                await self.park(report, result.error or "refused", result.status_code)
                outcome = "parked"
            else:
                report.next_attempt_at = now + timedelta(
                    seconds=retry_delay_seconds(report.attempts, cap)
                )
                outcome = "retry"
            self.session.add(
                ReportAttempt(
                    report_id=report.id,
                    attempt=report.attempts,
                    at=now,
                    status_code=result.status_code,
                    latency_ms=result.latency_ms,
                    error=result.error,
                    outcome=outcome,
                )
            )
        await self.session.flush()

    # --- reading and operator actions ------------------------------------------------------
    @staticmethod
    def _org_of(principal: Principal) -> str:
        AccountService.require(principal, Cap.REPORTS_READ)
        if principal.org_id is None:
            raise Forbidden("报送记录属于机构 / reports belong to an organisation")
        return principal.org_id

    async def reports(
        self, principal: Principal, status: ReportStatus | None, *, limit: int, offset: int
    ) -> Sequence[Report]:
        """The organisation's reports, newest first (references only: no PI)."""
        org_id = self._org_of(principal)
        return await self.repo.reports(
            org_id, None if status is None else status.value, limit=limit, offset=offset
        )

    async def report(
        self, principal: Principal, report_id: str
    ) -> tuple[Report, Sequence[ReportAttempt]]:
        """One report of the organisation and its delivery log."""
        org_id = self._org_of(principal)
        report = await self.repo.report(report_id)
        if report is None or report.org_id != org_id:
            raise not_found()
        return report, await self.repo.attempts(report_id)

    async def retry_parked(self, report_id: str, actor: str) -> Report:
        """Queue a parked report again (after the cause was fixed); audited."""
        report = await self.repo.report(report_id)
        if report is None:
            raise not_found()
        if report.status != ReportStatus.PARKED:
            raise Conflict(
                "只能重试已搁置的报送 / only parked reports can be retried",
                details={"status": report.status},
            )
        report.status = ReportStatus.PENDING.value
        report.next_attempt_at = self.clock.now()
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="reporting.report.retried",
            actor=actor,
            org_id=report.org_id,
            target=f"regulator_report:{report.id}",
        )
        REPORTS_QUEUED.after_commit(self.session)
        return report

    # --- the operator's console (CLI: the host's operator, every organisation) -------------
    async def outbox(self, status: ReportStatus | None, *, limit: int) -> Sequence[Report]:
        """Reports of every organisation, newest first."""
        return await self.repo.reports(
            None, None if status is None else status.value, limit=limit, offset=0
        )

    async def delivery_log(self, report_id: str) -> tuple[Report, Sequence[ReportAttempt]]:
        """A report of any organisation and its attempts."""
        report = await self.repo.report(report_id)
        if report is None:
            raise not_found()
        return report, await self.repo.attempts(report_id)
