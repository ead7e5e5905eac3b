"""HTTP endpoints under /api/v1/biometrics: remote face checks with a liveness challenge (F8),
and face enrolment and templates on devices (L8e, L9b).

Checks need ``biometrics.verify``, offers to devices ``biometrics.enrol`` (both: front desk,
property manager); a refusal is audited. The check endpoints open their own short transactions
(:class:`~anju.biometrics.remote.RemoteChecks`) so that no database transaction is held while
the face engine works, and the challenge is used up even when the check then fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Path, status

from anju.accounts.deps import BearerToken
from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.api.deps import PlatformDep
from anju.biometrics.access import authorised
from anju.biometrics.device_path import DeviceFaces
from anju.biometrics.remote import RemoteChecks
from anju.biometrics.schemas import (
    ChallengeIn,
    ChallengeOut,
    CheckOut,
    DocumentCheckIn,
    OfferOut,
    SubjectId,
    SubjectIn,
    TemplateCheckIn,
    offer_out,
)
from anju.platform import Platform

PREFIX = "/api/v1/biometrics"
#: Paths whose bodies carry images (they get the larger body limit, see anju.app).
IMAGE_PATHS = (f"{PREFIX}/document-checks", f"{PREFIX}/template-checks")

router = APIRouter(prefix=PREFIX, tags=["biometrics"])
DeviceIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.post("/challenges", response_model=ChallengeOut, status_code=status.HTTP_201_CREATED)
async def issue_challenge(
    body: ChallengeIn, token: BearerToken, platform: PlatformDep
) -> ChallengeOut:
    """活体检测挑战 / A liveness challenge: movements to perform, single use, valid 60 s."""
    challenge, row = await RemoteChecks(platform).issue(token, body.purpose, body.subject_id)
    return ChallengeOut(**challenge.as_dict(), purpose=body.purpose, subject_id=row.subject_id)


@router.post("/document-checks", response_model=CheckOut)
async def document_check(
    body: DocumentCheckIn, token: BearerToken, platform: PlatformDep
) -> CheckOut:
    """人证比对 / Live person (frames answering the challenge) vs document photo; nothing kept."""
    result = await RemoteChecks(platform).document_check(
        token, body.challenge_id, body.capture(), device=body.device, subject_id=body.subject_id
    )
    return CheckOut.model_validate(result.as_dict())


@router.post("/template-checks", response_model=CheckOut)
async def template_check(
    body: TemplateCheckIn, token: BearerToken, platform: PlatformDep
) -> CheckOut:
    """模板核验 / Live person (frames answering the challenge) vs their protected template."""
    result = await RemoteChecks(platform).template_check(
        token, body.challenge_id, body.capture(), device=body.device, subject_id=body.subject_id
    )
    return CheckOut.model_validate(result.as_dict())


async def _as_enroller(
    platform: Platform,
    token: str,
    action: str,
    work: Callable[[DeviceFaces, Principal], Awaitable[OfferOut]],
) -> OfferOut:
    """``work`` in a transaction of a holder of ``biometrics.enrol`` (refusals audited)."""
    async with authorised(platform, token, Cap.BIOMETRICS_ENROL, action) as (session, principal):
        return await work(DeviceFaces(platform, session), principal)


@router.post(
    "/devices/{device_id}/enrolments", response_model=OfferOut, status_code=status.HTTP_202_ACCEPTED
)
async def offer_enrolment(
    device_id: DeviceIdPath, body: SubjectIn, token: BearerToken, platform: PlatformDep
) -> OfferOut:
    """设备录入人脸 / Ask a lock or kiosk to enrol the person's next template version."""

    async def work(faces: DeviceFaces, principal: Principal) -> OfferOut:
        command, version = await faces.offer_enrolment(principal, device_id, body.subject_id)
        return offer_out(command, body.subject_id, version)

    return await _as_enroller(platform, token, "biometric.device.enrol", work)


@router.post(
    "/devices/{device_id}/templates", response_model=OfferOut, status_code=status.HTTP_202_ACCEPTED
)
async def send_template(
    device_id: DeviceIdPath, body: SubjectIn, token: BearerToken, platform: PlatformDep
) -> OfferOut:
    """下发人脸模板 / Let a lock recognise the person: it fetches their protected template."""

    async def work(faces: DeviceFaces, principal: Principal) -> OfferOut:
        command, version = await faces.send_template(principal, device_id, body.subject_id)
        return offer_out(command, body.subject_id, version)

    return await _as_enroller(platform, token, "biometric.device.load", work)


@router.delete(
    "/devices/{device_id}/templates/{subject_id}",
    response_model=OfferOut,
    status_code=status.HTTP_202_ACCEPTED,
)
async def withdraw_template(
    device_id: DeviceIdPath, subject_id: SubjectId, token: BearerToken, platform: PlatformDep
) -> OfferOut:
    """撤回人脸数据 / Tell the device to delete everything it holds of the person."""

    async def work(faces: DeviceFaces, principal: Principal) -> OfferOut:
        command = await faces.withdraw(principal, device_id, subject_id)
        return offer_out(command, subject_id, None)

    return await _as_enroller(platform, token, "biometric.device.drop", work)
