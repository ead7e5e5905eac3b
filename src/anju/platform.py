"""The platform's shared resources, built once at a boundary (server start, CLI command, test).

Everything a service needs — settings, database, key provider, clock — is passed in from here;
no module reads the environment or globals itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from anju.db import Database
from anju.kit.clock import Clock, SystemClock
from anju.kit.keyring import FileKeyProvider, KeyProvider
from anju.settings import Settings


@dataclass
class Platform:
    settings: Settings
    db: Database
    keys: KeyProvider
    clock: Clock = field(default_factory=SystemClock)


def open_key_provider(settings: Settings, *, create: bool = False) -> KeyProvider:
    """The configured key provider; ``create`` makes a new keyring when none exists yet."""
    if settings.key_provider != "file":
        from anju.errors import ConfigurationError

        raise ConfigurationError(
            f"key provider {settings.key_provider!r} is not available in this build; "
            "see docs/keys.md for the KMS/HSM adapter points"
        )
    path = settings.resolved_key_file
    return FileKeyProvider.open_or_create(path) if create else FileKeyProvider.load(path)


@asynccontextmanager
async def open_platform(
    settings: Settings, *, create_keys: bool = False, clock: Clock | None = None
) -> AsyncIterator[Platform]:
    """Open database and keys for the duration of a boundary."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keys = open_key_provider(settings, create=create_keys)
    db = Database(settings.resolved_database_url)
    try:
        yield Platform(settings=settings, db=db, keys=keys, clock=clock or SystemClock())
    finally:
        await db.dispose()
