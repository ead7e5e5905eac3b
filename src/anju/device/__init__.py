"""Device software: software secure element, power-loss-safe storage (docs/secure-element.md).

Imports only ``anju.protocol``, ``anju.kit``, ``anju.errors`` and the standard library — never the
platform.
"""

from anju.device.secure_element import (
    FactoryRecord,
    KeyUsage,
    Lifecycle,
    SecureElementDecryptError,
    SecureElementError,
    SeInfo,
    SoftwareSecureElement,
)
from anju.device.storage import (
    Event,
    EventBuffer,
    EventBufferStats,
    Sealer,
    SlotStore,
    Sm4GcmSealer,
    StorageError,
)

__all__ = [
    "Event",
    "EventBuffer",
    "EventBufferStats",
    "FactoryRecord",
    "KeyUsage",
    "Lifecycle",
    "SeInfo",
    "Sealer",
    "SecureElementDecryptError",
    "SecureElementError",
    "SlotStore",
    "Sm4GcmSealer",
    "SoftwareSecureElement",
    "StorageError",
]
