"""Jobs of the stays domain: mark no-shows, poll the rooms' iCal feeds. Each commits its own
transactions (a job is a boundary)."""

from __future__ import annotations

import logging
from datetime import timedelta

from anju.errors import AnjuError
from anju.platform import Platform
from anju.stays.imports import FeedResult, ImportService, fetch_feed
from anju.stays.service import BookingService

logger = logging.getLogger(__name__)
SYSTEM_ACTOR = "system:stays"


async def mark_no_shows(platform: Platform) -> int:
    """Bookings not checked in ``stays_no_show_grace_hours`` after their start: no-shows."""
    grace = timedelta(hours=platform.settings.stays_no_show_grace_hours)
    async with platform.db.transaction() as session:
        return await BookingService(platform, session).mark_no_shows(SYSTEM_ACTOR, grace)


async def poll_feed(platform: Platform, feed_id: str) -> FeedResult:
    """Fetch one feed (outside any transaction) and apply it; FeedError when it fails (the
    failure is kept as the feed's outcome)."""
    async with platform.db.transaction() as session:
        feed = await ImportService(platform, session).repo.feed(feed_id)
        if feed is None:
            return FeedResult()
        url = feed.url
    try:
        text = await fetch_feed(url, allow_private=platform.settings.webhook_allow_private)
        async with platform.db.transaction() as session:
            service = ImportService(platform, session)
            feed = await service.repo.feed(feed_id)
            if feed is None:
                return FeedResult()
            return await service.apply_feed(feed, text)
    except AnjuError as exc:
        async with platform.db.transaction() as session:
            feed = await ImportService(platform, session).repo.feed(feed_id)
            if feed is not None:
                feed.polled_at = platform.clock.now()
                feed.outcome = f"error: {exc.details.get('reason', exc.code)}"[:200]
        raise


async def poll_all_feeds(platform: Platform) -> int:
    """Poll every feed once; how many were read without error."""
    async with platform.db.transaction() as session:
        ids = [f.id for f in await ImportService(platform, session).repo.feeds()]
    ok = 0
    for feed_id in ids:
        try:
            await poll_feed(platform, feed_id)
            ok += 1
        except AnjuError as exc:
            logger.warning("iCal feed %s: %s", feed_id, exc.code)
    return ok


async def stays_jobs(platform: Platform) -> None:
    """One pass of the periodic stays jobs (``anju serve``)."""
    await mark_no_shows(platform)
    await poll_all_feeds(platform)
