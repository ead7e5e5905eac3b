"""Bookings from booking systems (docs/stays.md, "Imports"): signed webhooks per channel and
iCal feeds per room. Both land in :class:`BookingService`'s idempotent import, keyed by the
channel's own reference, so the same change twice changes nothing.

Webhooks use anju's own outbound scheme (anju.webhooks.signing): ``v1=`` HMAC-SM3 over
``<timestamp>.<body>`` with the channel's secret, a 5-minute window, and the event id
(``Anju-Webhook-Id``) refused when seen before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from anju.db import new_id
from anju.errors import Conflict, InvalidInput
from anju.stays.ical import CalendarError, read_feed
from anju.stays.models import Booking, ChannelSecret, IcalFeed, InboundEvent
from anju.stays.rules import (
    WEBHOOK_CHANNELS,
    Channel,
    FeedError,
    WebhookReplayed,
    WebhookSignatureInvalid,
    check_room_id,
    parse_channel,
)
from anju.stays.service import BookingDraft, BookingService
from anju.webhooks.rules import new_secret
from anju.webhooks.signing import ID_HEADER, verify
from anju.webhooks.targets import check_literal, parse_target, resolve

SECRET_AAD = b"anju/stays/channel-secret/v1|"
MAX_EVENT_ID = 100
MAX_WEBHOOK_BYTES = 64 * 1024
MAX_FEED_BYTES = 1024 * 1024
FEED_TIMEOUT_SECONDS = 10.0
WEBHOOK_TYPES = ("booking.created", "booking.modified", "booking.cancelled")
IMPORT_ACTOR = "system:booking-import"


@dataclass(frozen=True)
class FeedResult:
    created: int = 0
    modified: int = 0
    unchanged: int = 0
    cancelled: int = 0
    refused: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _aad(org_id: str, channel: str) -> bytes:
    return SECRET_AAD + f"{org_id}|{channel}".encode()


def webhook_channel(value: str) -> Channel:
    channel = parse_channel(value)
    if channel not in WEBHOOK_CHANNELS:
        raise InvalidInput(
            "该渠道不使用 webhook / this channel does not use webhooks",
            details={"field": "channel", "known": [c.value for c in WEBHOOK_CHANNELS]},
        )
    return channel


def _draft(channel: str, data: Any) -> BookingDraft:
    """The booking a webhook body describes (InvalidInput when malformed)."""
    if not isinstance(data, dict):
        raise InvalidInput("booking: an object", details={"field": "booking"})
    try:
        contact = data.get("contact") or {}
        return BookingDraft(
            room_id=check_room_id(str(data["room_id"])),
            starts_at=datetime.fromisoformat(str(data["starts_at"])),
            ends_at=datetime.fromisoformat(str(data["ends_at"])),
            headcount=int(data.get("headcount", 1)),
            channel=channel,
            external_ref=str(data["external_ref"]),
            contact_name=None if contact.get("name") is None else str(contact["name"]),
            contact_phone=None if contact.get("phone") is None else str(contact["phone"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidInput(
            "预订数据不完整或格式错误 / the booking is incomplete or malformed",
            details={"field": "booking"},
        ) from None


class ImportService(BookingService):
    """Channel secrets, webhook intake and iCal feeds of one transaction (caller commits)."""

    # --- webhooks --------------------------------------------------------------------------
    async def rotate_secret(self, actor: str, org_id: str, channel: str) -> str:
        """A new signing secret for the channel's webhooks, returned once."""
        which = webhook_channel(channel).value
        secret = new_secret()
        wrapped = self.platform.keys.wrap(secret.encode(), _aad(org_id, which))
        row = await self.repo.channel_secret(org_id, which)
        now = self.clock.now()
        if row is None:
            self.repo.add(ChannelSecret(org_id=org_id, channel=which, secret_wrapped=wrapped,
                                        created_by=actor, created_at=now))  # fmt: skip
        else:
            row.secret_wrapped, row.created_by, row.created_at = wrapped, actor, now
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="stays.channel_secret.rotated",
            actor=actor,
            org_id=org_id,
            target=f"booking-channel:{which}",
            details={"channel": which},
        )
        return secret

    async def receive_webhook(
        self, org_id: str, channel: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, Any]:
        """Verify a booking system's signed event and apply it: {event, outcome, booking}."""
        refused = WebhookSignatureInvalid("签名无效或已过期 / bad or expired signature")
        try:
            which = webhook_channel(channel).value
        except InvalidInput:
            raise refused from None
        row = await self.repo.channel_secret(org_id, which) if len(org_id) <= 36 else None
        if row is None or len(body) > MAX_WEBHOOK_BYTES:
            raise refused
        secret = self.platform.keys.unwrap(row.secret_wrapped, _aad(org_id, which)).decode()
        now_s = int(self.clock.now().timestamp())
        if not verify(secret, headers, body, now_s=now_s):
            raise refused
        lowered = {k.lower(): v for k, v in headers.items()}
        event_id = lowered.get(ID_HEADER.lower(), "")
        if not 0 < len(event_id) <= MAX_EVENT_ID:
            raise InvalidInput(f"{ID_HEADER}: 1–{MAX_EVENT_ID} characters")
        if await self.repo.event_seen(org_id, which, event_id):
            raise WebhookReplayed(
                "该事件已处理 / this event was already processed", details={"event": event_id}
            )
        self.repo.add(InboundEvent(org_id=org_id, channel=which, event_id=event_id,
                                   received_at=self.clock.now()))  # fmt: skip
        await self.session.flush()
        try:
            payload = json.loads(body)
            kind = payload["type"]
            booking = payload["booking"]
        except (ValueError, KeyError, TypeError):
            raise InvalidInput("事件格式错误 / malformed event") from None
        if kind not in WEBHOOK_TYPES:
            raise InvalidInput(f"type: one of {', '.join(WEBHOOK_TYPES)}")
        actor = f"{IMPORT_ACTOR}:{which}"
        result: Booking | None
        if kind == "booking.cancelled":
            ref = booking.get("external_ref") if isinstance(booking, dict) else None
            if not isinstance(ref, str) or not 0 < len(ref) <= 200:
                raise InvalidInput("external_ref required", details={"field": "external_ref"})
            result, outcome = await self.import_cancel(actor, org_id, which, ref)
        else:
            result, outcome = await self.import_upsert(actor, org_id, _draft(which, booking))
        return {"event": event_id, "outcome": outcome, "booking": result.id if result else None}

    # --- iCal feeds ------------------------------------------------------------------------
    async def add_feed(self, actor: str, org_id: str, room_id: str, url: str) -> IcalFeed:
        """Poll ``url`` for the room's bookings (one feed per room; a new URL replaces it)."""
        check_room_id(room_id)
        await self.rooms.doors_of_room(org_id, room_id)
        target = parse_target(url)
        check_literal(target, allow_private=self.platform.settings.webhook_allow_private)
        feed = await self.repo.feed_of_room(org_id, room_id)
        now = self.clock.now()
        if feed is None:
            feed = IcalFeed(id=new_id(), org_id=org_id, room_id=room_id, url=url,
                            created_by=actor, created_at=now)  # fmt: skip
            self.repo.add(feed)
        else:
            feed.url, feed.created_by, feed.created_at = url, actor, now
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="stays.ical_feed.set",
            actor=actor,
            org_id=org_id,
            target=f"ical-feed:{feed.id}",
            details={"feed": feed.id, "room": room_id},
        )
        return feed

    async def apply_feed(self, feed: IcalFeed, text: str) -> FeedResult:
        """Create, move and cancel the room's iCal bookings to match the feed's events; a
        booked booking of the feed whose event vanished (and has not started) is cancelled."""
        try:
            read = read_feed(text)
        except CalendarError as exc:
            raise FeedError(
                "日历无法读取 / the calendar cannot be read", details={"reason": str(exc)}
            ) from None
        counts = dict.fromkeys(("created", "modified", "unchanged", "cancelled", "refused"), 0)
        actor = f"{IMPORT_ACTOR}:ical"
        seen = set()
        for event in read.events:
            seen.add(event.uid)
            draft = BookingDraft(feed.room_id, event.starts_at, event.ends_at, 1,
                                 Channel.ICAL.value, event.uid)  # fmt: skip
            try:
                async with self.session.begin_nested():
                    if event.cancelled:
                        _, outcome = await self.import_cancel(
                            actor, feed.org_id, Channel.ICAL.value, event.uid
                        )
                        counts["cancelled"] += outcome == "cancelled"
                        continue
                    _, outcome = await self.import_upsert(actor, feed.org_id, draft)
                counts[outcome] += 1
            except (InvalidInput, Conflict):  # an overlap or bad event refuses this one only
                counts["refused"] += 1
        now = self.clock.now()
        for booking in await self.repo.feed_refs(feed.org_id, feed.room_id, Channel.ICAL.value):
            if booking.external_ref not in seen and booking.starts_at > now:
                await self._cancel(actor, booking)
                counts["cancelled"] += 1
        result = FeedResult(skipped=read.skipped, **counts)
        feed.polled_at = now
        feed.outcome = json.dumps(result.as_dict(), sort_keys=True)[:200]
        await self.session.flush()
        return result


async def fetch_feed(url: str, *, allow_private: bool) -> str:
    """The feed's text: SSRF-guarded like webhooks (every resolved address allowed, connect
    to the checked one), no redirects, at most 1 MiB, 10 s."""
    try:
        target = parse_target(url)
        address = await resolve(target, allow_private=allow_private)
    except InvalidInput as exc:
        raise FeedError("日历地址不可用 / feed URL refused", details={"reason": exc.code}) from None
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    chunks: list[bytes] = []
    size = 0
    try:
        async with (
            httpx.AsyncClient(
                timeout=httpx.Timeout(FEED_TIMEOUT_SECONDS),
                follow_redirects=False,
                trust_env=False,
            ) as client,  # fmt: skip
            client.stream(
                "GET",
                target.url_for(address),
                headers={"Host": target.host_header},
                extensions=extensions,
            ) as response,  # fmt: skip
        ):
            if response.status_code != 200:
                raise FeedError(
                    "日历地址返回错误 / the feed answered with an error",
                    details={"reason": f"http_{response.status_code}"},
                )
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_FEED_BYTES:
                    raise FeedError(
                        "日历过大 / the feed is larger than 1 MiB", details={"reason": "too_large"}
                    )
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise FeedError(
            "日历地址无法访问 / the feed cannot be fetched",
            details={"reason": type(exc).__name__},
        ) from None
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise FeedError(
            "日历须为 UTF-8 / the feed is not UTF-8", details={"reason": "encoding"}
        ) from None
