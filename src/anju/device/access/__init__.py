"""Access control in the reference lock: credentials, verification, lockout, alarms, records.

docs/device-sdk.md ("Access control") describes what the lock does; docs/protocol.md
("Access control / 门禁") the wire.
"""

from anju.device.access.agent import AccessAgent
from anju.device.access.alarms import AlarmPolicy
from anju.device.access.card import Card, SimulatedCard
from anju.device.access.lockout import LockoutPolicy
from anju.device.access.phone import PhoneWallet
from anju.device.access.verifier import AccessOptions, AccessVerdict

__all__ = [
    "AccessAgent",
    "AccessOptions",
    "AccessVerdict",
    "AlarmPolicy",
    "Card",
    "LockoutPolicy",
    "PhoneWallet",
    "SimulatedCard",
]
