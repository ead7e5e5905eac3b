"""HTTP endpoints under /api/v1/retention (docs/retention.md); all need ``retention.manage``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from anju.accounts.deps import BearerToken, require
from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.api.deps import DbSession, PlatformDep
from anju.biometrics.access import authorised
from anju.consent.service import ConsentService
from anju.errors import Forbidden, NotFound
from anju.retention.schemas import (
    AnchorIn,
    AnchorOut,
    ClosureIn,
    ClosureOut,
    PolicyOut,
    RunOut,
)
from anju.retention.service import RetentionService
from anju.retention.sweepers import SweeperRegistry, standard_sweepers
from anju.retention.tasks import run_sweep

router = APIRouter(prefix="/api/v1/retention", tags=["retention"])

Manager = Annotated[Principal, Depends(require(Cap.RETENTION_MANAGE))]


@router.get("/policies", response_model=list[PolicyOut])
async def policies(
    principal: Manager, platform: PlatformDep, session: DbSession
) -> list[PolicyOut]:
    """保存策略 / The retention policies in force, with their sources."""
    swept = set(standard_sweepers().kinds())
    return [
        PolicyOut(**p.as_dict(), swept=p.kind in swept)
        for p in RetentionService(platform, session).policies().values()
    ]


@router.post("/anchors", response_model=AnchorOut, status_code=status.HTTP_201_CREATED)
async def mark_anchor(
    body: AnchorIn, principal: Manager, platform: PlatformDep, session: DbSession
) -> AnchorOut:
    """记录起算事件 / Record check-out, closure or verification done for a person."""
    if principal.org_id is None or not await ConsentService(platform, session).subject_known(
        principal.org_id, body.subject_id
    ):
        raise NotFound("本机构没有该主体 / no such subject in this organisation")
    row = await RetentionService(platform, session).mark_anchor(
        principal.actor, body.subject_id, body.anchor, org_id=principal.org_id, at=body.at
    )
    return AnchorOut.of(row)


@router.post("/closures", response_model=ClosureOut, status_code=status.HTTP_201_CREATED)
async def close_account(
    body: ClosureIn, principal: Manager, platform: PlatformDep, session: DbSession
) -> ClosureOut:
    """注销账户 / Close the person's account: consents withdrawn, retention counts from now."""
    if principal.org_id is None:
        raise Forbidden("需要所属机构 / this needs an account of an organisation")
    withdrawn = await RetentionService(platform, session).close_account(
        principal.org_id, principal.actor, body.subject_id, channel=body.channel
    )
    return ClosureOut(subject_id=body.subject_id, consents_withdrawn=withdrawn)


@router.post("/sweeps", response_model=RunOut, status_code=status.HTTP_201_CREATED)
async def sweep_now(request: Request, token: BearerToken, platform: PlatformDep) -> RunOut:
    """立即清理 / Run the retention sweep now (it also runs on a schedule in `anju serve`)."""
    # Authorised in its own short transaction: the sweep commits batch by batch.
    async with authorised(platform, token, Cap.RETENTION_MANAGE, "retention.sweep") as (
        _,
        principal,
    ):
        actor = principal.actor
    # The app's registry (the edges' copies of unlock records wired in), standard otherwise.
    registry: SweeperRegistry | None = getattr(request.app.state, "sweepers", None)
    report = await run_sweep(platform, actor=actor, registry=registry)
    return RunOut(
        id=report.run_id,
        started_at=report.started_at,
        actor=actor,
        removed=report.removed,
        counts=report.counts,
    )


@router.get("/runs", response_model=list[RunOut])
async def runs(principal: Manager, platform: PlatformDep, session: DbSession) -> list[RunOut]:
    """清理记录 / The latest sweep runs (counts per kind)."""
    return [RunOut.of(r) for r in await RetentionService(platform, session).runs()]
