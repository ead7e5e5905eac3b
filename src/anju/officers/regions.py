"""Which organisations lie in a jurisdiction: the one seam between officers and properties."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from anju.platform import Platform
from anju.properties.rules import check_region_prefix
from anju.properties.service import PropertyService

__all__ = ["check_region_prefix", "orgs_in_regions"]


async def orgs_in_regions(
    platform: Platform, session: AsyncSession, prefixes: Sequence[str]
) -> set[str]:
    """Ids of organisations with a site whose GB/T 2260 region code starts with a prefix."""
    return await PropertyService(platform, session).orgs_in_regions(prefixes)
