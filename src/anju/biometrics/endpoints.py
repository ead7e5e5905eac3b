"""HTTP endpoints under /api/v1/biometrics: remote face checks with a liveness challenge (F8).

Every call needs ``biometrics.verify`` (front desk, property manager); a refusal is audited. The
check endpoints open their own short transactions (:class:`~anju.biometrics.remote.RemoteChecks`)
so that no database transaction is held while the face engine works, and the challenge is used
up even when the check then fails.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from anju.accounts.deps import BearerToken
from anju.api.deps import PlatformDep
from anju.biometrics.remote import RemoteChecks
from anju.biometrics.schemas import (
    ChallengeIn,
    ChallengeOut,
    CheckOut,
    DocumentCheckIn,
    TemplateCheckIn,
)

PREFIX = "/api/v1/biometrics"
#: Paths whose bodies carry images (they get the larger body limit, see anju.app).
IMAGE_PATHS = (f"{PREFIX}/document-checks", f"{PREFIX}/template-checks")

router = APIRouter(prefix=PREFIX, tags=["biometrics"])


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
