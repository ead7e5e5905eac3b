"""HTTP endpoints under /api/v1/access: grants, credentials, deliveries, freezes, anomalies.

Reading needs ``access.read`` (or ``access.manage``); every change needs ``access.manage`` and a
recent second factor (R17c). Refusals are audited; another organisation's objects are 404.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.anomalies import find_anomalies
from anju.access.credentials.delivery import Deliveries
from anju.access.credentials.service import CredentialService
from anju.access.freeze import FreezeService
from anju.access.grants import GrantService
from anju.access.guard import require_manager, require_reader, run_access
from anju.access.keys import access_certificate
from anju.access.schemas import (
    AnomalyOut,
    CredentialIn,
    CredentialOut,
    DeliveryOut,
    FreezeIn,
    FreezeOut,
    GrantIn,
    GrantOut,
    IssuedOut,
    ReplaceIn,
    anomaly_out,
    credential_out,
    delivery_out,
    freeze_out,
    grant_out,
)
from anju.accounts.deps import BearerToken
from anju.accounts.principal import Principal
from anju.api.deps import PlatformDep
from anju.devices.service import not_found
from anju.errors import InvalidInput
from anju.platform import Platform
from anju.protocol.access import encode_signer

router = APIRouter(prefix="/api/v1/access", tags=["access"])
IdPath = Annotated[str, Path(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def _holder_key(text: str | None) -> bytes:
    try:
        return base64.b64decode(text or "", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("holder_key: base64", details={"field": "holder_key"}) from None


def _certificate(platform: Platform) -> str:
    now = int(platform.clock.now().timestamp())
    return encode_signer(access_certificate(platform.keys, platform.settings.audit_origin, now))


# --- grants ------------------------------------------------------------------------------
@router.post("/grants", response_model=GrantOut, status_code=status.HTTP_201_CREATED)
async def create_grant(body: GrantIn, token: BearerToken, platform: PlatformDep) -> GrantOut:
    """Grant a subject access to doors (limits by person type; anomalies flagged)."""

    async def work(session: AsyncSession, principal: Principal) -> GrantOut:
        org_id = require_manager(platform, session, principal)
        grant, anomalies = await GrantService(platform, session).create(
            principal.actor, org_id, body.spec(), actor_subject=principal.id
        )
        return grant_out(grant, anomalies)

    return await run_access(platform, token, "access.grant.created", work)


@router.get("/grants", response_model=list[GrantOut])
async def list_grants(
    token: BearerToken,
    platform: PlatformDep,
    subject_id: Annotated[str | None, Query(max_length=64)] = None,
    grant_status: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[GrantOut]:
    async def work(session: AsyncSession, principal: Principal) -> list[GrantOut]:
        rows = await GrantService(platform, session).search(
            require_reader(principal),
            subject_id=subject_id,
            status=grant_status,
            limit=limit,
            offset=offset,
        )
        return [grant_out(g) for g in rows]

    return await run_access(platform, token, "access.read", work)


@router.get("/grants/{grant_id}", response_model=GrantOut)
async def get_grant(grant_id: IdPath, token: BearerToken, platform: PlatformDep) -> GrantOut:
    async def work(session: AsyncSession, principal: Principal) -> GrantOut:
        return grant_out(
            await GrantService(platform, session).get(require_reader(principal), grant_id)
        )

    return await run_access(platform, token, "access.read", work)


@router.post("/grants/{grant_id}/revoke", response_model=GrantOut)
async def revoke_grant(grant_id: IdPath, token: BearerToken, platform: PlatformDep) -> GrantOut:
    """End a grant; every credential under it is removed from the locks."""

    async def work(session: AsyncSession, principal: Principal) -> GrantOut:
        org_id = require_manager(platform, session, principal)
        return grant_out(
            await GrantService(platform, session).revoke(principal.actor, org_id, grant_id)
        )

    return await run_access(platform, token, "access.grant.revoked", work)


# --- credentials -------------------------------------------------------------------------
@router.post(
    "/grants/{grant_id}/credentials", response_model=IssuedOut, status_code=status.HTTP_201_CREATED
)
async def issue_credential(
    grant_id: IdPath, body: CredentialIn, token: BearerToken, platform: PlatformDep
) -> IssuedOut:
    """Issue a credential under a grant; its secret part is in this answer only."""

    async def work(session: AsyncSession, principal: Principal) -> IssuedOut:
        org_id = require_manager(platform, session, principal)
        svc = CredentialService(platform, session)
        if body.kind == "passcode":
            cred, digits = await svc.issue_passcode(
                principal.actor, org_id, grant_id, body.passcode
            )
            return IssuedOut(credential=credential_out(cred), passcode=digits)
        if body.kind == "card":
            if body.card_uid is None:
                raise InvalidInput("card_uid is required", details={"field": "card_uid"})
            cred, key = await svc.issue_card(principal.actor, org_id, grant_id, body.card_uid)
            return IssuedOut(
                credential=credential_out(cred), card_uid=cred.card_uid, card_key=key.hex()
            )
        cred, tokens = await svc.issue_ekey(
            principal.actor, org_id, grant_id, _holder_key(body.holder_key)
        )
        return IssuedOut(
            credential=credential_out(cred), tokens=tokens, certificate=_certificate(platform)
        )

    return await run_access(platform, token, "access.credential.issued", work)


@router.get("/grants/{grant_id}/credentials", response_model=list[CredentialOut])
async def grant_credentials(
    grant_id: IdPath, token: BearerToken, platform: PlatformDep
) -> list[CredentialOut]:
    async def work(session: AsyncSession, principal: Principal) -> list[CredentialOut]:
        grant = await GrantService(platform, session).get(require_reader(principal), grant_id)
        rows = await CredentialService(platform, session).of_grant(grant)
        return [credential_out(c) for c in rows]

    return await run_access(platform, token, "access.read", work)


@router.get("/credentials/{credential_id}", response_model=CredentialOut)
async def get_credential(
    credential_id: IdPath, token: BearerToken, platform: PlatformDep
) -> CredentialOut:
    async def work(session: AsyncSession, principal: Principal) -> CredentialOut:
        svc = CredentialService(platform, session)
        return credential_out(await svc.get(require_reader(principal), credential_id))

    return await run_access(platform, token, "access.read", work)


@router.get("/credentials/{credential_id}/deliveries", response_model=list[DeliveryOut])
async def credential_deliveries(
    credential_id: IdPath, token: BearerToken, platform: PlatformDep
) -> list[DeliveryOut]:
    """Where the credential stands on each lock (installed/removed only from signed receipts)."""

    async def work(session: AsyncSession, principal: Principal) -> list[DeliveryOut]:
        svc = CredentialService(platform, session)
        rows = await svc.deliveries_of(require_reader(principal), credential_id)
        return [delivery_out(r) for r in rows]

    return await run_access(platform, token, "access.read", work)


@router.post("/credentials/{credential_id}/replace", response_model=IssuedOut)
async def replace_credential(
    credential_id: IdPath, body: ReplaceIn, token: BearerToken, platform: PlatformDep
) -> IssuedOut:
    """A new credential of the same kind; the old one revoked (e.g. a new card for a lost one)."""

    async def work(session: AsyncSession, principal: Principal) -> IssuedOut:
        org_id = require_manager(platform, session, principal)
        holder = None if body.holder_key is None else _holder_key(body.holder_key)
        new, handover = await CredentialService(platform, session).replace(
            principal.actor,
            org_id,
            credential_id,
            digits=body.passcode,
            uid=body.card_uid,
            holder_key=holder,
        )
        out = IssuedOut(credential=credential_out(new), **handover)
        if out.tokens is not None:
            out.certificate = _certificate(platform)
        return out

    return await run_access(platform, token, "access.credential.replaced", work)


@router.post("/credentials/{credential_id}/{action}", response_model=CredentialOut)
async def act_on_credential(
    credential_id: IdPath,
    action: Literal["suspend", "resume", "revoke", "lost"],
    token: BearerToken,
    platform: PlatformDep,
) -> CredentialOut:
    """Suspend, resume, revoke, or report lost (revoked and dropped everywhere at once)."""

    async def work(session: AsyncSession, principal: Principal) -> CredentialOut:
        org_id = require_manager(platform, session, principal)
        svc = CredentialService(platform, session)
        if action == "suspend":
            cred = await svc.suspend(principal.actor, org_id, credential_id)
        elif action == "resume":
            cred = await svc.resume(principal.actor, org_id, credential_id)
        else:
            cred = await svc.revoke(
                principal.actor,
                org_id,
                credential_id,
                reason="lost" if action == "lost" else "revoked",
            )
        return credential_out(cred)

    return await run_access(platform, token, f"access.credential.{action}", work)


# --- freezes -----------------------------------------------------------------------------
@router.post("/freezes", response_model=FreezeOut, status_code=status.HTTP_201_CREATED)
async def freeze(body: FreezeIn, token: BearerToken, platform: PlatformDep) -> FreezeOut:
    """Freeze a person's access at once (arrears, violation, other)."""

    async def work(session: AsyncSession, principal: Principal) -> FreezeOut:
        org_id = require_manager(platform, session, principal)
        view = await FreezeService(platform, session).freeze(
            principal.actor, org_id, body.subject_id, body.reason, body.note
        )
        return freeze_out(view)

    return await run_access(platform, token, "access.freeze.frozen", work)


@router.get("/freezes", response_model=list[FreezeOut])
async def list_freezes(
    token: BearerToken,
    platform: PlatformDep,
    subject_id: Annotated[str | None, Query(max_length=64)] = None,
    freeze_status: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    limit: Limit = 100,
) -> list[FreezeOut]:
    async def work(session: AsyncSession, principal: Principal) -> list[FreezeOut]:
        svc = FreezeService(platform, session)
        org_id = require_reader(principal)
        rows = await svc.search(org_id, subject_id=subject_id, status=freeze_status, limit=limit)
        return [freeze_out(await svc.view(org_id, r.id)) for r in rows]

    return await run_access(platform, token, "access.read", work)


@router.get("/freezes/{freeze_id}", response_model=FreezeOut)
async def get_freeze(freeze_id: IdPath, token: BearerToken, platform: PlatformDep) -> FreezeOut:
    async def work(session: AsyncSession, principal: Principal) -> FreezeOut:
        return freeze_out(
            await FreezeService(platform, session).view(require_reader(principal), freeze_id)
        )

    return await run_access(platform, token, "access.read", work)


@router.post("/freezes/{freeze_id}/lift", response_model=FreezeOut)
async def lift_freeze(freeze_id: IdPath, token: BearerToken, platform: PlatformDep) -> FreezeOut:
    """Unfreeze (offline codes revoked by serial stay revoked: issue new ones)."""

    async def work(session: AsyncSession, principal: Principal) -> FreezeOut:
        org_id = require_manager(platform, session, principal)
        return freeze_out(
            await FreezeService(platform, session).lift(principal.actor, org_id, freeze_id)
        )

    return await run_access(platform, token, "access.freeze.lifted", work)


# --- anomalies and reconcile -------------------------------------------------------------
@router.get("/anomalies", response_model=list[AnomalyOut])
async def anomalies(
    token: BearerToken,
    platform: PlatformDep,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = 100,
) -> list[AnomalyOut]:
    """Abnormal grants: mass_grant, odd_hours, long_grant, self_grant (newest first)."""

    async def work(session: AsyncSession, principal: Principal) -> list[AnomalyOut]:
        rows = await find_anomalies(session, require_reader(principal), kind=kind, limit=limit)
        return [anomaly_out(r) for r in rows]

    return await run_access(platform, token, "access.read", work)


@router.post("/locks/{device_id}/reconcile")
async def reconcile_lock(
    device_id: IdPath, token: BearerToken, platform: PlatformDep
) -> dict[str, int]:
    """Queue again what the lock must still get (commands that ended without a receipt)."""

    async def work(session: AsyncSession, principal: Principal) -> dict[str, int]:
        org_id = require_manager(platform, session, principal)
        locks = await Deliveries(platform, session).repo.org_locks(org_id, device_ids=[device_id])
        if not locks:
            raise not_found()
        return {"requeued": await Deliveries(platform, session).reconcile(device_id)}

    return await run_access(platform, token, "access.delivery.reconciled", work)
