"""What happens when consent is withdrawn: callbacks per notice kind, run in the withdrawal's
own transaction so processing stops with the same commit that records the withdrawal (L8)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.credentials.service import CredentialService
from anju.access.rules import CredentialStatus
from anju.biometrics.service import BiometricService, Operator
from anju.consent.notices import NoticeKind
from anju.platform import Platform
from anju.protocol.access import CredentialKind

WITHDRAWAL_DEVICE = "platform"


@dataclass(frozen=True)
class Withdrawal:
    """A recorded withdrawal, as the callbacks see it."""

    platform: Platform
    session: AsyncSession
    org_id: str
    subject_id: str
    kind: NoticeKind
    purpose: str
    actor: str


WithdrawalCallback = Callable[[Withdrawal], Awaitable[None]]


class WithdrawalHooks:
    """Callbacks per notice kind; ``on_withdrawn`` adds one, ``run`` calls them in order."""

    def __init__(self) -> None:
        self._callbacks: dict[NoticeKind, list[WithdrawalCallback]] = {}

    def on_withdrawn(self, kind: NoticeKind, callback: WithdrawalCallback) -> None:
        """Call ``callback`` whenever consent under a notice of ``kind`` is withdrawn."""
        self._callbacks.setdefault(kind, []).append(callback)

    def callbacks(self, kind: NoticeKind) -> list[WithdrawalCallback]:
        return list(self._callbacks.get(kind, []))

    async def run(self, withdrawal: Withdrawal) -> None:
        for callback in self._callbacks.get(withdrawal.kind, []):
            await callback(withdrawal)


async def revoke_face_templates(withdrawal: Withdrawal) -> None:
    """Face consent withdrawn: the person's templates are revoked (sealed bits deleted)."""
    operator = Operator(withdrawal.actor[:128], WITHDRAWAL_DEVICE, withdrawal.org_id)
    await BiometricService(withdrawal.platform, withdrawal.session).revoke(
        withdrawal.subject_id, operator
    )


async def end_face_credentials(withdrawal: Withdrawal) -> None:
    """Face consent withdrawn: the person's face credentials in the organisation end, so every
    lock holding their face is sent ``bio.drop`` (access control, docs/access.md)."""
    credentials = CredentialService(withdrawal.platform, withdrawal.session)
    live = [CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED]
    for credential in await credentials.repo.credentials_of_subject(
        withdrawal.org_id, withdrawal.subject_id, live
    ):
        if credential.kind == CredentialKind.FACE:
            await credentials.end(withdrawal.actor, credential, "consent_withdrawn")


def standard_hooks() -> WithdrawalHooks:
    """The platform's withdrawal hooks. Face recognition: the locks drop the person's face
    (their face credentials end), then the templates are revoked."""
    hooks = WithdrawalHooks()
    hooks.on_withdrawn(NoticeKind.FACE_RECOGNITION, end_face_credentials)
    hooks.on_withdrawn(NoticeKind.FACE_RECOGNITION, revoke_face_templates)
    return hooks
