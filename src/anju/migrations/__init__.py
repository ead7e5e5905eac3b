"""Alembic migrations (run with ``anju db upgrade``); they run on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData

from anju.db import Base, Database

SCRIPT_LOCATION = Path(__file__).parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at anju's migrations, optionally bound to a connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.attributes["connection"] = connection
    return cfg


MODEL_MODULES = (
    "anju.privacy.models",
    "anju.audit.models",
    "anju.accounts.models",
    "anju.devices.models",
    "anju.devices.command_models",
    "anju.gateway.models",
    "anju.biometrics.models",
    "anju.firmware.models",
    "anju.people.models",
    "anju.access.models",
    "anju.unlocks.models",
    "anju.alarms.models",
    "anju.webhooks.models",
    "anju.consent.models",
    "anju.retention.models",
    "anju.properties.models",
    "anju.stays.models",
    "anju.reporting.models",
    "anju.leases.models",
    "anju.officers.models",
    "anju.requests.models",
)


def target_metadata() -> MetaData:
    """Every table the models declare (what the migrations must produce)."""
    import importlib

    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata


def script_heads() -> set[str]:
    """The head revisions the migration scripts define."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


async def upgrade(db: Database, revision: str = "heads") -> None:
    """Bring the schema up to ``revision`` (all heads by default)."""
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), revision))


async def current_revisions(db: Database) -> set[str]:
    """The revisions the database is at (empty when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    async with db.engine.connect() as conn:
        return await conn.run_sync(lambda c: set(MigrationContext.configure(c).get_current_heads()))


async def downgrade(db: Database, revision: str) -> None:
    """Step the schema back to ``revision`` ("base" removes every table)."""
    async with db.engine.begin() as conn:
        await conn.run_sync(
            lambda sync_conn: command.downgrade(alembic_config(sync_conn), revision)
        )
