"""Reading the CTID client configuration file (``settings.ctid_config``)."""

from __future__ import annotations

import json
from pathlib import Path

from anju.errors import ConfigurationError
from anju.kit.clock import Clock
from anju.kit.crypto import SM2PublicKey
from anju.people.verification.ctid import CtidProvider
from anju.people.verification.ctid_wire import CtidConfig


def load_ctid_config(path: Path) -> CtidConfig:
    """The configuration in ``path``; ``ConfigurationError`` names what is wrong (no secrets)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return CtidConfig(
            base_url=str(data["base_url"]),
            app_id=str(data["app_id"]),
            app_secret=bytes.fromhex(str(data["app_secret_hex"])),
            service_public_key=SM2PublicKey.from_pem(str(data["service_public_key_pem"])),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"CTID 配置无效 / bad CTID configuration {path}: {type(exc).__name__}"
        ) from None


def configured_provider(path: Path | None, clock: Clock) -> CtidProvider | None:
    """The CTID provider the settings configure, or None."""
    return None if path is None else CtidProvider(load_ctid_config(path), clock)
