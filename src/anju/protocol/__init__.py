"""The device protocol shared by the platform and device software (docs/protocol.md).

Imports only ``anju.kit``, ``anju.errors`` and third-party/stdlib code, so device software can
use it without the platform.
"""
