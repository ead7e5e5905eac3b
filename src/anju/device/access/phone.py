"""A simulated phone wallet holding eKeys (docs/protocol.md, "eKeys").

The phone makes its own SM2 key pair (the private key never leaves it); the platform certifies
the public key in an eKey token for one lock. At the door the phone shows the token (a QR code,
or over BLE) with its signature over the lock's fresh challenge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anju.kit.crypto import SM2PrivateKey
from anju.protocol.access import ekey_proof_message


@dataclass
class PhoneWallet:
    """One phone: its key pair and the signed tokens it was given (key id -> token)."""

    key: SM2PrivateKey = field(default_factory=SM2PrivateKey.generate, repr=False)
    tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def holder_key(self) -> bytes:
        """The public key (x‖y) the platform puts in the token."""
        return self.key.public_key.raw

    def prove(self, challenge: bytes, *, device_id: str, key_id: str) -> bytes:
        """The phone's SM2 signature over the lock's challenge for one of its eKeys."""
        return self.key.sign(ekey_proof_message(challenge, device_id=device_id, key_id=key_id))
