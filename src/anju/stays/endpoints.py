"""HTTP endpoints: /api/v1/bookings (bookings, channel secrets, iCal feeds, the signed webhook
intake) and /api/v1/stays/{booking_id}/… (check-in, check-out, guests, visitors).

``stays.manage`` writes, ``stays.read`` reads; contacts are shown masked. The webhook intake
takes no session: the channel's HMAC-SM3 signature is the authentication.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status

from anju.accounts.deps import BearerToken, require
from anju.accounts.principal import Principal
from anju.accounts.roles import Cap
from anju.accounts.service import AccountService
from anju.api.deps import DbSession, PlatformDep
from anju.errors import Forbidden, InvalidInput, NotFound
from anju.stays.imports import MAX_WEBHOOK_BYTES, ImportService
from anju.stays.journey import GuestIn as Guest
from anju.stays.journey import StayService
from anju.stays.models import IcalFeed, StayVisitor
from anju.stays.rules import BookingStatus
from anju.stays.schemas import (
    BookingIn,
    BookingOut,
    CheckInIn,
    CheckInOut,
    FeedIn,
    FeedOut,
    GuestKeysOut,
    SecretOut,
    StayGuestOut,
    VisitorIn,
    VisitorOut,
    WebhookResultOut,
    out,
)
from anju.stays.service import BookingDraft, booking_view
from anju.stays.tasks import poll_feed

router = APIRouter(prefix="/api/v1", tags=["stays"])

Manager = Annotated[Principal, Depends(require(Cap.STAYS_MANAGE))]
Reader = Annotated[Principal, Depends(require(Cap.STAYS_READ))]
BookingId = Annotated[str, Path(min_length=1, max_length=36)]


def org_of(principal: Principal) -> str:
    if principal.org_id is None:
        raise Forbidden("需要所属机构 / this needs an account of an organisation")
    return principal.org_id


def draft_of(body: BookingIn) -> BookingDraft:
    contact = body.contact
    return BookingDraft(
        body.room_id, body.starts_at, body.ends_at, body.headcount, body.channel,
        body.external_ref, contact.name if contact else None, contact.phone if contact else None,
    )  # fmt: skip


def visitor_out(v: StayVisitor, passcode: str | None = None) -> VisitorOut:
    return VisitorOut(
        id=v.id, subject_id=v.subject_id, grant_id=v.grant_id, doors=v.doors,
        valid_from=v.valid_from.isoformat(), valid_until=v.valid_until.isoformat(),
        passcode=passcode,
    )  # fmt: skip


def feed_out(f: IcalFeed) -> FeedOut:
    polled = None if f.polled_at is None else f.polled_at.isoformat()
    return FeedOut(id=f.id, room_id=f.room_id, polled_at=polled, outcome=f.outcome)


# --- bookings ------------------------------------------------------------------------------
@router.post("/bookings", response_model=BookingOut, status_code=status.HTTP_201_CREATED)
async def create_booking(
    body: BookingIn, principal: Manager, platform: PlatformDep, session: DbSession
) -> BookingOut:
    """新建预订 / Book a room for a period (409 ``booking_overlap`` when it is taken)."""
    booking = await StayService(platform, session).create(
        principal.actor, org_of(principal), draft_of(body)
    )
    return out(booking_view(booking))


@router.get("/bookings", response_model=list[BookingOut])
async def list_bookings(
    principal: Reader,
    platform: PlatformDep,
    session: DbSession,
    room_id: Annotated[str | None, Query(max_length=36)] = None,
    booking_status: Annotated[BookingStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[BookingOut]:
    """预订列表 / The organisation's bookings by start (contacts masked)."""
    rows = await StayService(platform, session).search(
        org_of(principal), room_id=room_id,
        status=None if booking_status is None else booking_status.value,
        limit=limit, offset=offset,
    )  # fmt: skip
    return [out(booking_view(b)) for b in rows]


@router.get("/bookings/{booking_id}", response_model=BookingOut)
async def get_booking(
    booking_id: BookingId, principal: Reader, platform: PlatformDep, session: DbSession
) -> BookingOut:
    """预订 / One booking (contact masked)."""
    booking = await StayService(platform, session).get(org_of(principal), booking_id)
    return out(booking_view(booking))


@router.put("/bookings/{booking_id}", response_model=BookingOut)
async def modify_booking(
    booking_id: BookingId,
    body: BookingIn,
    principal: Manager,
    platform: PlatformDep,
    session: DbSession,
) -> BookingOut:
    """修改预订 / Move a booked booking (room, period, headcount, contact)."""
    booking = await StayService(platform, session).modify(
        principal.actor, org_of(principal), booking_id, draft_of(body)
    )
    return out(booking_view(booking))


@router.post("/bookings/{booking_id}/cancel", response_model=BookingOut)
async def cancel_booking(
    booking_id: BookingId, principal: Manager, platform: PlatformDep, session: DbSession
) -> BookingOut:
    """取消预订 / Cancel a booked booking (again: no change)."""
    booking = await StayService(platform, session).cancel(
        principal.actor, org_of(principal), booking_id
    )
    return out(booking_view(booking))


# --- imports -------------------------------------------------------------------------------
@router.post("/booking-channels/{channel}/secret", response_model=SecretOut)
async def rotate_channel_secret(
    channel: Annotated[str, Path(max_length=16)],
    principal: Manager,
    platform: PlatformDep,
    session: DbSession,
) -> SecretOut:
    """渠道签名密钥 / A new webhook signing secret for a channel (ota, pms), shown once."""
    secret = await ImportService(platform, session).rotate_secret(
        principal.actor, org_of(principal), channel
    )
    return SecretOut(channel=channel, secret=secret)


@router.post("/booking-webhooks/{org_id}/{channel}", response_model=WebhookResultOut)
async def booking_webhook(
    org_id: Annotated[str, Path(min_length=1, max_length=36)],
    channel: Annotated[str, Path(max_length=16)],
    request: Request,
    platform: PlatformDep,
    session: DbSession,
) -> WebhookResultOut:
    """预订系统推送 / A booking system's signed event (created, modified, cancelled)."""
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise InvalidInput("事件过大 / event larger than 64 KiB")
    result = await ImportService(platform, session).receive_webhook(
        org_id, channel, dict(request.headers), body
    )
    return WebhookResultOut(**result)


@router.put("/booking-feeds", response_model=FeedOut)
async def set_ical_feed(
    body: FeedIn, principal: Manager, platform: PlatformDep, session: DbSession
) -> FeedOut:
    """房间日历订阅 / Poll this iCal URL for the room's bookings (replaces an earlier one)."""
    feed = await ImportService(platform, session).add_feed(
        principal.actor, org_of(principal), body.room_id, body.url
    )
    return feed_out(feed)


@router.post("/booking-feeds/{feed_id}/poll", response_model=FeedOut)
async def poll_ical_feed(
    feed_id: Annotated[str, Path(min_length=1, max_length=36)],
    token: BearerToken,
    platform: PlatformDep,
) -> FeedOut:
    """立即同步日历 / Poll the feed now (409 ``ical_feed_error`` when it cannot be read).

    No request transaction (the caller is authenticated in a short one of its own): the feed is
    fetched outside any transaction, then applied in its own — SQLite has one writer."""
    async with platform.db.transaction() as session:
        principal = await AccountService(platform, session).authenticate(token)
        AccountService.require(principal, Cap.STAYS_MANAGE)
        feed = await ImportService(platform, session).repo.feed(feed_id)
        if feed is None or feed.org_id != org_of(principal):
            raise NotFound("日历订阅不存在 / no such feed", details={"field": "feed_id"})
    await poll_feed(platform, feed_id)
    async with platform.db.transaction() as session:
        fresh = await ImportService(platform, session).repo.feed(feed_id)
        assert fresh is not None
        return feed_out(fresh)


# --- the journey ---------------------------------------------------------------------------
@router.post("/stays/{booking_id}/check-in", response_model=CheckInOut)
async def check_in(
    booking_id: BookingId,
    body: CheckInIn,
    principal: Manager,
    platform: PlatformDep,
    session: DbSession,
) -> CheckInOut:
    """入住 / Check the guests in: passcodes and eKey tokens are in this answer only."""
    guests = []
    for g in body.guests:
        try:
            key = None if g.holder_key is None else bytes.fromhex(g.holder_key)
        except ValueError:
            raise InvalidInput("holder_key: hex", details={"field": "holder_key"}) from None
        guests.append(Guest(g.subject_id, key))
    done = await StayService(platform, session).check_in(
        principal.actor, org_of(principal), booking_id, guests,
        override_reason=body.headcount_override_reason,
    )  # fmt: skip
    return CheckInOut(
        booking=out(booking_view(done.booking)),
        guests=[GuestKeysOut(**k.__dict__) for k in done.guests],
    )


@router.post("/stays/{booking_id}/check-out", response_model=BookingOut)
async def check_out(
    booking_id: BookingId, principal: Manager, platform: PlatformDep, session: DbSession
) -> BookingOut:
    """退房 / Check out: credentials revoked, locks told to wipe, retention clock started."""
    booking = await StayService(platform, session).check_out(
        principal.actor, org_of(principal), booking_id
    )
    return out(booking_view(booking))


@router.get("/stays/{booking_id}/guests", response_model=list[StayGuestOut])
async def stay_guests(
    booking_id: BookingId, principal: Reader, platform: PlatformDep, session: DbSession
) -> list[StayGuestOut]:
    """在住客人 / The guests checked in under a booking (pseudonymous ids)."""
    rows = await StayService(platform, session).guests_of(org_of(principal), booking_id)
    return [
        StayGuestOut(
            subject_id=g.subject_id,
            grant_id=g.grant_id,
            passcode_id=g.passcode_id,
            ekey_id=g.ekey_id,
            face_consented=g.face_consented,
            checked_in_at=g.checked_in_at.isoformat(),
        )
        for g in rows
    ]


@router.post(
    "/stays/{booking_id}/visitors", response_model=VisitorOut, status_code=status.HTTP_201_CREATED
)
async def add_visitor(
    booking_id: BookingId,
    body: VisitorIn,
    principal: Manager,
    platform: PlatformDep,
    session: DbSession,
) -> VisitorOut:
    """访客登记 / A visitor's pass (≤ 24 h, chosen doors); the passcode is shown once."""
    granted = await StayService(platform, session).add_visitor(
        principal.actor, org_of(principal), booking_id, body.subject_id,
        valid_from=body.valid_from, valid_until=body.valid_until, doors=body.doors,
    )  # fmt: skip
    return visitor_out(granted.visitor, granted.passcode)


@router.get("/stays/{booking_id}/visitors", response_model=list[VisitorOut])
async def list_visitors(
    booking_id: BookingId, principal: Reader, platform: PlatformDep, session: DbSession
) -> list[VisitorOut]:
    """访客 / The visitors registered for a stay."""
    rows = await StayService(platform, session).visitors_of(org_of(principal), booking_id)
    return [visitor_out(v) for v in rows]
