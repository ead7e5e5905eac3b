"""HTTP endpoints under /api/v1/audit: the log for auditors, checkpoints and proofs (L17, F1, V5).

Reading entries needs ``audit.read`` and is itself an audit event; proofs and full verification
need ``audit.verify``. The public key is public: anyone may check a checkpoint they were given.
An auditor of an organisation sees that organisation's entries; a platform-level auditor (no
organisation) sees every entry.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict

from anju.accounts.deps import require
from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.api.deps import DbSession, PlatformDep
from anju.audit import repository
from anju.audit.models import AuditEntry
from anju.audit.service import AuditLog
from anju.errors import InvalidInput, NotFound

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

AuditReader = Annotated[Principal, Depends(require(Cap.AUDIT_READ))]
AuditVerifier = Annotated[Principal, Depends(require(Cap.AUDIT_VERIFY))]
PEM = "application/x-pem-file"


class EntryOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    recorded_at: datetime
    org_id: str | None
    actor: str
    action: str
    target: str | None
    outcome: str
    details: dict[str, Any]
    leaf_hash: str

    @classmethod
    def of(cls, row: AuditEntry) -> EntryOut:
        return cls(
            index=int(row.leaf_index),
            recorded_at=row.recorded_at,
            org_id=row.org_id,
            actor=row.actor,
            action=row.action,
            target=row.target,
            outcome=row.outcome,
            details=json.loads(row.details),
            leaf_hash=bytes(row.leaf_hash).hex(),
        )


class EntriesOut(BaseModel):
    entries: list[EntryOut]
    next_before: int | None


class VerifyOut(BaseModel):
    ok: bool
    summary: str
    entries: int
    checkpoints: int
    not_yet_signed: int
    first_problem: str | None


@router.get("/public-key", response_class=PlainTextResponse)
async def public_key(platform: PlatformDep) -> PlainTextResponse:
    """审计日志 SM2 公钥 / The audit log's SM2 public key (PEM SubjectPublicKeyInfo)."""
    return PlainTextResponse(AuditLog(platform).public_key().to_pem(), media_type=PEM)


@router.get("/checkpoint", response_class=PlainTextResponse)
async def latest_checkpoint(
    principal: AuditReader, platform: PlatformDep, session: DbSession
) -> PlainTextResponse:
    """最新签名检查点 / The latest signed checkpoint note (docs/audit.md)."""
    checkpoint = await AuditLog(platform).latest_checkpoint(session)
    if checkpoint is None:
        raise NotFound("尚无签名检查点 / no signed checkpoint yet")
    return PlainTextResponse(checkpoint.note)


@router.get("/entries")
async def list_entries(
    principal: AuditReader,
    platform: PlatformDep,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=0)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    outcome: Annotated[Literal["success", "failure", "denied"] | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> EntriesOut:
    """审计记录（最新在前）/ Audit entries, newest first; page with ``before``."""
    for moment in (since, until):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput("时间须带时区 / times must carry a time zone (e.g. Z or +08:00)")
    rows = await repository.search(
        session,
        limit=limit,
        org_id=principal.org_id,
        before=before,
        action_prefix=action,
        actor=actor,
        outcome=outcome,
        since=since,
        until=until,
    )
    await AuditLog(platform).record(
        session,
        action="audit.entries.read",
        actor=principal.actor,
        org_id=principal.org_id,
        details={"returned": len(rows), "action_filter": action, "before": before},
    )
    entries = [EntryOut.of(row) for row in rows]
    next_before = entries[-1].index if len(entries) == limit else None
    return EntriesOut(entries=entries, next_before=next_before)


@router.get("/proofs/inclusion")
async def inclusion_proof(
    principal: AuditVerifier,
    platform: PlatformDep,
    session: DbSession,
    index: Annotated[int, Query(ge=0)],
    size: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    """包含性证明 / RFC 9162 inclusion proof of entry ``index`` (default: latest checkpoint)."""
    total = await repository.tree_size(session)
    if index >= total or (size is not None and not index < size <= total):
        raise NotFound("该树规模下无此记录 / no such entry in a tree of that size")
    return (await AuditLog(platform).inclusion_proof(session, index, size)).to_json()


@router.get("/proofs/consistency")
async def consistency_proof(
    principal: AuditVerifier,
    platform: PlatformDep,
    session: DbSession,
    first: Annotated[int, Query(ge=1)],
    second: Annotated[int, Query(ge=1)],
) -> dict[str, Any]:
    """一致性证明 / RFC 9162 consistency proof that tree ``second`` extends tree ``first``."""
    if not first <= second <= await repository.tree_size(session):
        raise NotFound("树规模无效 / sizes must satisfy first ≤ second ≤ current size")
    return (await AuditLog(platform).consistency_proof(session, first, second)).to_json()


@router.post("/verify")
async def verify(principal: AuditVerifier, platform: PlatformDep, session: DbSession) -> VerifyOut:
    """校验整个审计日志 / Verify the whole log (same checks as ``anju audit verify``)."""
    report = await AuditLog(platform).verify(session)
    return VerifyOut(
        ok=report.ok,
        summary=report.summary(),
        entries=report.entries,
        checkpoints=report.checkpoints,
        not_yet_signed=report.uncovered,
        first_problem=None if report.first_problem is None else report.first_problem.message,
    )
