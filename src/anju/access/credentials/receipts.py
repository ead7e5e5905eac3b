"""The lock's signed receipts of access commands: the only source of "installed" / "removed".

The gateway verifies each ``access.receipt`` record with the device's registry public key and
calls :func:`apply_receipt` in the event batch's transaction (docs/access.md). A receipt counts
only for the command it names *and* that command must be the one the delivery row is waiting
for on that very lock — so a late receipt of an older command, a receipt naming another lock's
command, or one for a credential the row is not about, changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.models import AccessDelivery
from anju.access.repository import AccessRepository
from anju.access.rules import DeliveryState
from anju.devices.models import Device
from anju.kit.crypto import SM2PublicKey
from anju.platform import Platform
from anju.protocol.access import verify_record
from anju.protocol.errors import ProtocolError

#: (op, receipt state) → the delivery row's new state.
_DELIVERY_OUTCOMES: dict[tuple[str, str], DeliveryState] = {
    ("put", "installed"): DeliveryState.INSTALLED,
    ("put", "refused"): DeliveryState.REFUSED,
    ("drop", "removed"): DeliveryState.REMOVED,
    ("revoke", "applied"): DeliveryState.REMOVED,  # an eKey revoked by id on the lock
}
#: What a row must be waiting for, for each op.
_WAITING: dict[str, frozenset[DeliveryState]] = {
    "put": frozenset({DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.FAILED}),
    "drop": frozenset({DeliveryState.REMOVING}),
    "revoke": frozenset({DeliveryState.REMOVING}),
}


async def apply_receipt(
    platform: Platform,
    session: AsyncSession,
    *,
    device_id: str,
    event_id: str,
    record: dict[str, Any],
) -> None:
    """Apply one verified ``access.receipt`` record of ``device_id`` (idempotent; flushes)."""
    command_id, op, state = record.get("cmd"), record.get("op"), record.get("state")
    if record.get("dev") != device_id or not isinstance(command_id, str) or len(command_id) > 64:
        return
    if not isinstance(op, str) or not isinstance(state, str):
        return
    code = record.get("code")
    code = code[:64] if isinstance(code, str) else None
    repo = AccessRepository(session)
    now = platform.clock.now()
    outcome = _DELIVERY_OUTCOMES.get((op, state))
    if op == "drop" and state == "refused" and code == "not_found":
        outcome = DeliveryState.REMOVED  # the lock holds no such credential: it is gone
    if outcome is not None:
        for row in await repo.delivery_by_command(device_id, command_id):
            if _applies(row, op, record.get("cred")):
                row.state = outcome
                row.code = code if outcome == DeliveryState.REFUSED else None
                row.confirmed_at = row.updated_at = now
    operation = await repo.lock_operation(command_id)
    if (
        operation is not None
        and operation.device_id == device_id
        and operation.op == op
        and operation.state == "queued"
        and state in ("applied", "removed", "refused")
    ):
        operation.state = "refused" if state == "refused" else "applied"
        operation.code = code
        operation.confirmed_at = now
        if op == "wipe" and state != "refused" and operation.subject_id is not None:
            await _wiped(repo, device_id, operation.subject_id, now)
    await session.flush()


def _applies(row: AccessDelivery, op: str, cred: Any) -> bool:
    waiting = _WAITING.get(op, frozenset())
    return row.state in waiting and (op == "revoke" or cred == row.credential_id)


async def _wiped(repo: AccessRepository, device_id: str, subject_id: str, now: Any) -> None:
    """A confirmed wipe removed every credential of the subject that was being removed."""
    for row in await repo.deliveries_of_subject_on(device_id, subject_id):
        if row.state == DeliveryState.REMOVING:
            row.state = DeliveryState.REMOVED
            row.confirmed_at = row.updated_at = now


async def apply_signed_receipt(
    platform: Platform,
    session: AsyncSession,
    *,
    device_id: str,
    event_id: str,
    data: Any,
) -> bool:
    """Verify a receipt event's ``{rec, sig}`` with the device's registry key, then apply it.
    False (and nothing changes) when the signature or the device does not check out."""
    device = await session.get(Device, device_id)
    if device is None:
        return False
    try:
        record = verify_record(
            data, device_id=device_id, public_key=SM2PublicKey(device.public_key)
        )
    except ProtocolError:
        return False
    await apply_receipt(platform, session, device_id=device_id, event_id=event_id, record=record)
    return True
