"""Calling a domain service in its own transaction from a test, its refusal code, row counts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.errors import AnjuError
from anju.platform import Platform

S = TypeVar("S")
T = TypeVar("T")


async def in_transaction(
    platform: Platform,
    service: Callable[[Platform, AsyncSession], S],
    work: Callable[[S], Awaitable[T]],
) -> T:
    """``work(service(platform, session))`` in one committed transaction."""
    async with platform.db.transaction() as session:
        return await work(service(platform, session))


async def refusal(attempt: Awaitable[object]) -> str:
    """The stable code of the domain error ``attempt`` raises (it must raise one)."""
    with pytest.raises(AnjuError) as caught:
        await attempt
    return caught.value.code


async def row_count(platform: Platform, model: type[object]) -> int:
    async with platform.db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())
