"""HTTP endpoints under /api/v1/notices and /api/v1/consents (docs/consent.md).

Publishing needs ``notices.manage``; recording and reading consent ``consent.record`` (front
desk, property manager, data operator). Everything is scoped to the caller's organisation.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from anju.accounts.deps import CurrentPrincipal, require
from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.api.deps import DbSession, PlatformDep
from anju.consent.notices import build_content
from anju.consent.receipts import CONSENT_SIGNER, verify_receipt
from anju.consent.schemas import (
    CheckOut,
    ConsentEventOut,
    ConsentIn,
    NoticeIn,
    NoticeOut,
    ReceiptKeyOut,
    ReceiptVerifyIn,
    ReceiptVerifyOut,
    RecordedOut,
)
from anju.consent.service import ConsentService
from anju.errors import Forbidden

router = APIRouter(prefix="/api/v1", tags=["consent"])

Publisher = Annotated[Principal, Depends(require(Cap.NOTICES_MANAGE))]
Recorder = Annotated[Principal, Depends(require(Cap.CONSENT_RECORD))]
KindPath = Annotated[str, Path(max_length=64)]
SubjectQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def org_of(principal: Principal) -> str:
    """The caller's organisation (notices and consents always belong to one)."""
    if principal.org_id is None:
        raise Forbidden("需要所属机构 / this needs an account of an organisation")
    return principal.org_id


@router.get("/notices", response_model=list[NoticeOut])
async def current_notices(
    principal: CurrentPrincipal, platform: PlatformDep, session: DbSession
) -> list[NoticeOut]:
    """现行告知 / The organisation's notices in force (the newest version of each kind)."""
    rows = await ConsentService(platform, session).current_notices(org_of(principal))
    return [NoticeOut.of(r) for r in rows]


@router.post("/notices", response_model=NoticeOut, status_code=status.HTTP_201_CREATED)
async def publish_notice(
    body: NoticeIn, principal: Publisher, platform: PlatformDep, session: DbSession
) -> NoticeOut:
    """发布告知新版本 / Publish the next version of a notice: earlier consents become stale."""
    content = build_content(
        body.kind,
        title_zh=body.title_zh,
        title_en=body.title_en,
        text_zh=body.text_zh,
        text_en=body.text_en,
        items=[(i.purpose, i.categories, i.required) for i in body.items],
    )
    row = await ConsentService(platform, session).publish(
        org_of(principal), principal.actor, content
    )
    return NoticeOut.of(row)


@router.get("/notices/{kind}/versions/{version}", response_model=NoticeOut)
async def notice_version(
    kind: KindPath,
    version: Annotated[int, Path(ge=1, le=1_000_000)],
    principal: CurrentPrincipal,
    platform: PlatformDep,
    session: DbSession,
) -> NoticeOut:
    """告知的某一版本 / One published version of a notice (what a receipt's hash refers to)."""
    row = await ConsentService(platform, session).notice(org_of(principal), kind, version)
    return NoticeOut.of(row)


@router.post("/consents", response_model=RecordedOut, status_code=status.HTTP_201_CREATED)
async def record_consent(
    body: ConsentIn, principal: Recorder, platform: PlatformDep, session: DbSession
) -> RecordedOut:
    """记录同意、拒绝或撤回 / Record the person's consent, refusal or withdrawal; a receipt."""
    service = ConsentService(platform, session)
    event = await service.record(
        org_of(principal),
        principal.actor,
        subject_id=body.subject_id,
        kind=body.notice_kind,
        version=body.notice_version,
        purpose=body.purpose,
        action=body.action,
        channel=body.channel,
    )
    return RecordedOut(event=ConsentEventOut.of(event), receipt=service.receipt(event))


@router.get("/consents", response_model=list[ConsentEventOut])
async def consent_history(
    subject_id: SubjectQuery, principal: Recorder, platform: PlatformDep, session: DbSession
) -> list[ConsentEventOut]:
    """同意记录 / The person's consent events in this organisation, oldest first."""
    rows = await ConsentService(platform, session).events(org_of(principal), subject_id)
    return [ConsentEventOut.of(r) for r in rows]


@router.get("/consents/check", response_model=CheckOut)
async def check_consent(
    subject_id: SubjectQuery,
    purpose: Annotated[str, Query(max_length=64)],
    principal: Recorder,
    platform: PlatformDep,
    session: DbSession,
    category: Annotated[str | None, Query(max_length=64)] = None,
) -> CheckOut:
    """同意核对 / May this purpose be used for the person now (consented / stale / …)?"""
    answer = await ConsentService(platform, session).check(
        org_of(principal), subject_id, purpose, category
    )
    return CheckOut.of(answer)


@router.get("/consents/overview", response_model=list[CheckOut])
async def consent_overview(
    subject_id: SubjectQuery, principal: Recorder, platform: PlatformDep, session: DbSession
) -> list[CheckOut]:
    """隐私设置 / Every purpose of the notices in force with the person's answer (L4)."""
    answers = await ConsentService(platform, session).overview(org_of(principal), subject_id)
    return [CheckOut.of(a) for a in answers]


@router.get("/consents/receipt-key", response_model=ReceiptKeyOut)
async def receipt_key(principal: CurrentPrincipal, platform: PlatformDep) -> ReceiptKeyOut:
    """回执验签公钥 / The SM2 public key consent receipts verify with."""
    key = platform.keys.signer(CONSENT_SIGNER).public_key
    return ReceiptKeyOut(
        signer=CONSENT_SIGNER, public_key=key.raw.hex(), public_key_pem=key.to_pem()
    )


@router.post("/consents/receipts/verify", response_model=ReceiptVerifyOut)
async def verify_consent_receipt(
    body: ReceiptVerifyIn, principal: CurrentPrincipal, platform: PlatformDep
) -> ReceiptVerifyOut:
    """验证回执 / Check a receipt's signature against this platform's consent key."""
    key = platform.keys.signer(CONSENT_SIGNER).public_key
    checked = verify_receipt(body.model_dump(), key)
    return ReceiptVerifyOut(valid=True, receipt=checked)


@router.get("/consents/{event_id}/receipt")
async def consent_receipt(
    event_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    principal: Recorder,
    platform: PlatformDep,
    session: DbSession,
) -> dict[str, object]:
    """下载同意回执 / The signed receipt of one consent event, for the person to keep."""
    service = ConsentService(platform, session)
    return service.receipt(await service.event(org_of(principal), event_id))
