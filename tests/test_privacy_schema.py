"""The privacy migration creates exactly what the SQLAlchemy models describe (both backends)."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from anju.platform import Platform
from anju.privacy.models import MasterKeyCheck, SubjectDataKey

pytestmark = pytest.mark.req("R16", "L14")


async def test_migration_matches_models(platform: Platform) -> None:
    tables = {SubjectDataKey.__table__, MasterKeyCheck.__table__}
    meta = MetaData(naming_convention=SubjectDataKey.metadata.naming_convention)
    for table in tables:
        table.to_metadata(meta)  # type: ignore[attr-defined]

    names = {t.name for t in tables}

    def only_privacy(name: str | None, type_: str, parent_names: Any) -> bool:
        return type_ != "table" or name in names

    def diff(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(
            sync_conn, opts={"compare_type": True, "include_name": only_privacy}
        )
        return list(compare_metadata(context, meta))

    async with platform.db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []
