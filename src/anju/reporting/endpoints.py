"""HTTP endpoints under /api/v1/reports: the regulator report outbox and its delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from anju.accounts.deps import CurrentPrincipal
from anju.api.deps import DbSession, PlatformDep
from anju.reporting.rules import ReportStatus
from anju.reporting.schemas import ReportDetailOut, ReportOut, report_detail_out, report_out
from anju.reporting.service import ReportingService

router = APIRouter(prefix="/api/v1/reports", tags=["reporting"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=list[ReportOut])
async def list_reports(
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
    report_status: Annotated[ReportStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[ReportOut]:
    """The organisation's regulator reports, newest first (capability ``reports.read``)."""
    rows = await ReportingService(platform, session).reports(
        principal, report_status, limit=limit, offset=offset
    )
    return [report_out(r) for r in rows]


@router.get("/{report_id}", response_model=ReportDetailOut)
async def get_report(
    report_id: IdPath, principal: CurrentPrincipal, platform: PlatformDep, session: DbSession
) -> ReportDetailOut:
    """One report with every delivery attempt (status code, latency, error, outcome)."""
    report, attempts = await ReportingService(platform, session).report(principal, report_id)
    return report_detail_out(report, attempts)
