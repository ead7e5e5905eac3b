"""Migrations produce exactly what the models declare, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from anju.migrations import current_revisions, downgrade, script_heads, target_metadata, upgrade
from anju.platform import Platform

pytestmark = pytest.mark.req("R11", "R16")


async def _differences(platform: Platform) -> list[Any]:
    metadata = target_metadata()

    def diff(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return [
            d
            for d in compare_metadata(context, metadata)
            if not (d[0] == "remove_table" and d[1].name == "alembic_version")
        ]

    async with platform.db.engine.connect() as conn:
        return await conn.run_sync(diff)


async def test_one_head_and_database_at_it(platform: Platform) -> None:
    assert len(script_heads()) == 1, "migration history must have exactly one head"
    assert await current_revisions(platform.db) == script_heads()


async def test_schema_matches_models(platform: Platform) -> None:
    assert await _differences(platform) == []


async def test_downgrade_to_base_and_up_again(platform: Platform) -> None:
    await downgrade(platform.db, "base")

    async with platform.db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert tables <= {"alembic_version"}
    await upgrade(platform.db)
    assert await _differences(platform) == []
