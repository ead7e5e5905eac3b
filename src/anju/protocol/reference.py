"""A software ``DeviceKeyStore`` for tests, benchmarks and the device simulator.

It holds the private key and root key in process memory, so it is NOT a secure element: a real
device implements the same four operations inside its SE (R19), and nothing leaves it but the
public key, signatures and the session keys derived from Kp.
"""

from __future__ import annotations

from anju.kit.crypto import SM2PrivateKey, SM2PublicKey
from anju.protocol.keys import ROOT_KEY_BYTES, derive_session_keys


class SoftwareKeyStore:
    """Reference implementation of :class:`anju.protocol.handshake.DeviceKeyStore`."""

    __slots__ = ("_private", "_root_key")

    def __init__(self, private_key: SM2PrivateKey, root_key: bytes) -> None:
        if len(root_key) != ROOT_KEY_BYTES:
            raise ValueError("root key must be 16 bytes")
        self._private = private_key
        self._root_key = root_key

    @property
    def public_key(self) -> SM2PublicKey:
        """The device's SM2 public key."""
        return self._private.public_key

    def sign(self, message: bytes) -> bytes:
        """SM2-sign ``message`` (default signer id)."""
        return self._private.sign(message)

    def decrypt(self, ciphertext: bytes) -> bytes:
        """SM2-decrypt (raises IntegrityError when it does not check)."""
        return self._private.decrypt(ciphertext)

    def derive_session_keys(self, kp: bytes, salt: bytes, info: bytes) -> tuple[bytes, bytes]:
        """(k_up, k_down) from the root key held here and the platform's Kp."""
        return derive_session_keys(self._root_key, kp, salt, info)
