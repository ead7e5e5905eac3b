"""Queries of the privacy domain (subject data keys, master-key checks)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from anju.privacy.models import MasterKeyCheck, SubjectDataKey


async def latest_subject_key(session: AsyncSession, subject_id: str) -> SubjectDataKey | None:
    """The subject's newest data-key generation (shredded or not), or None."""
    stmt = (
        select(SubjectDataKey)
        .where(SubjectDataKey.subject_id == subject_id)
        .order_by(SubjectDataKey.generation.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def subject_key(
    session: AsyncSession, subject_id: str, generation: int
) -> SubjectDataKey | None:
    """One generation of a subject's data key."""
    return await session.get(SubjectDataKey, (subject_id, generation))


async def add_subject_key(session: AsyncSession, key: SubjectDataKey) -> None:
    """Insert a new data-key row (flush so a concurrent duplicate fails here)."""
    session.add(key)
    await session.flush()


async def shred_subject_keys(session: AsyncSession, subject_id: str, now: datetime) -> int:
    """Remove every wrapped key of the subject; returns how many were still live."""
    stmt = (
        update(SubjectDataKey)
        .where(SubjectDataKey.subject_id == subject_id, SubjectDataKey.shredded_at.is_(None))
        .values(wrapped_key=None, master_version=None, shredded_at=now)
        .execution_options(synchronize_session="fetch")
    )
    result = await session.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def keys_wrapped_below(
    session: AsyncSession, version: int, after: tuple[str, int] | None, limit: int
) -> Sequence[SubjectDataKey]:
    """Live keys wrapped under a master version below ``version``, in key order after ``after``."""
    stmt = select(SubjectDataKey).where(
        SubjectDataKey.master_version < version, SubjectDataKey.wrapped_key.is_not(None)
    )
    if after is not None:
        stmt = stmt.where(
            or_(
                SubjectDataKey.subject_id > after[0],
                and_(SubjectDataKey.subject_id == after[0], SubjectDataKey.generation > after[1]),
            )
        )
    stmt = stmt.order_by(SubjectDataKey.subject_id, SubjectDataKey.generation).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def count_keys_by_master_version(session: AsyncSession) -> dict[int | None, int]:
    """Number of data keys per master version (None = shredded)."""
    stmt = select(SubjectDataKey.master_version, func.count()).group_by(
        SubjectDataKey.master_version
    )
    return {version: int(count) for version, count in (await session.execute(stmt)).all()}


async def count_live_keys_below(session: AsyncSession, version: int) -> int:
    """Live data keys still wrapped under a master version older than ``version``."""
    stmt = select(func.count()).where(
        SubjectDataKey.master_version < version, SubjectDataKey.wrapped_key.is_not(None)
    )
    return int((await session.execute(stmt)).scalar_one())


async def max_wrapped_master_version(session: AsyncSession) -> int | None:
    """The newest master version any data key is wrapped under."""
    stmt = select(func.max(SubjectDataKey.master_version))
    value = (await session.execute(stmt)).scalar_one()
    return None if value is None else int(value)


async def key_checks(session: AsyncSession) -> Sequence[MasterKeyCheck]:
    """All master-key check rows, oldest version first."""
    stmt = select(MasterKeyCheck).order_by(MasterKeyCheck.master_version)
    return (await session.execute(stmt)).scalars().all()


async def key_check(session: AsyncSession, version: int) -> MasterKeyCheck | None:
    return await session.get(MasterKeyCheck, version)


async def add_key_check(session: AsyncSession, check: MasterKeyCheck) -> None:
    session.add(check)
    await session.flush()


__all__ = [
    "add_key_check",
    "add_subject_key",
    "count_keys_by_master_version",
    "count_live_keys_below",
    "key_check",
    "key_checks",
    "keys_wrapped_below",
    "latest_subject_key",
    "max_wrapped_master_version",
    "shred_subject_keys",
    "subject_key",
]
