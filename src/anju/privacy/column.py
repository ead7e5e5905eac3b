"""``EncryptedPI``: the only column type PI may be stored in — it accepts sealed values only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import LargeBinary, TypeDecorator
from sqlalchemy.engine import Dialect

from anju.kit.envelope import blob_generation


@dataclass(frozen=True, slots=True)
class Sealed:
    """A PI value sealed by the vault (envelope ciphertext). Its repr never shows the bytes."""

    blob: bytes

    @property
    def generation(self) -> int:
        """The data-key generation the value was sealed under."""
        return blob_generation(self.blob)

    def __repr__(self) -> str:
        return f"Sealed({len(self.blob)} bytes)"


class EncryptedPI(TypeDecorator[Sealed]):
    """LargeBinary that binds only :class:`Sealed`; a plain ``str``/``bytes`` is a ``TypeError``."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        if not isinstance(value, Sealed):
            raise TypeError(
                f"an EncryptedPI column takes a Sealed value from PIVault.seal, not "
                f"{type(value).__name__}: PI must never reach storage in clear"
            )
        return value.blob

    def process_result_value(self, value: Any, dialect: Dialect) -> Sealed | None:
        if value is None:
            return None
        return Sealed(bytes(value))
