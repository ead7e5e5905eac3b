"""A simulated NFC/IC card and the lock's side of the card exchange (docs/protocol.md).

The reader reads the card's UID, sends a fresh 16-byte challenge, and the card answers with
:func:`anju.protocol.access.card_response` under its per-card key. A clone that copied the UID
(which any reader can read) but not the key cannot answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from anju.kit.crypto import random_bytes
from anju.protocol.access import CARD_KEY_BYTES, card_response


class Card(Protocol):
    """What a lock's reader can do with a card held to it."""

    @property
    def uid(self) -> str:
        """The anti-collision UID (lowercase hex; readable by anyone)."""
        ...

    def answer(self, challenge: bytes, *, device_id: str) -> bytes:
        """The card's response to a reader's challenge."""
        ...


@dataclass(frozen=True)
class SimulatedCard:
    """A card with a per-card key inside (an IC card's protected sector)."""

    uid: str
    key: bytes = field(default_factory=lambda: random_bytes(CARD_KEY_BYTES), repr=False)

    def answer(self, challenge: bytes, *, device_id: str) -> bytes:
        """HMAC-SM3 answer bound to this card, the lock and the challenge."""
        return card_response(self.key, uid=self.uid, device_id=device_id, challenge=challenge)
