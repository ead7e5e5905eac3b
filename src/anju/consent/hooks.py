"""What happens when consent is withdrawn: callbacks per notice kind, run in the withdrawal's
own transaction so processing stops with the same commit that records the withdrawal (L8)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from anju.biometrics.service import BiometricService, Operator
from anju.consent.notices import NoticeKind
from anju.platform import Platform

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


def standard_hooks() -> WithdrawalHooks:
    """The platform's withdrawal hooks.

    Face recognition: revoke the templates here. Wiping the person's face credentials on every
    lock belongs to access control, which registers its own callback on
    ``NoticeKind.FACE_RECOGNITION`` next to this one (one ``on_withdrawn`` line).
    """
    hooks = WithdrawalHooks()
    hooks.on_withdrawn(NoticeKind.FACE_RECOGNITION, revoke_face_templates)
    return hooks
