"""The check-in / check-out journey and visitors (docs/stays.md, "Check-in").

Check-in, per guest: consent in force (privacy policy and regulator-reporting notice; face is
optional), identity verified at registration, then a guest grant over the room locks and the
common doors for the booking period, a passcode (and an eKey when the guest's phone key is
given), and the regulator report queued — all in the caller's one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.credentials.service import CredentialService
from anju.access.grants import DoorSelector, GrantService, GrantSpec
from anju.access.rules import GrantStatus
from anju.consent.gate import ConsentRequired
from anju.consent.service import ConsentService
from anju.db import new_id
from anju.errors import InvalidInput
from anju.people.repository import PeopleRepository
from anju.platform import Platform
from anju.privacy.inventory import Category, Purpose, RetentionAnchor
from anju.reporting.service import ReportingService
from anju.retention.service import RetentionService
from anju.stays.models import Booking, StayGuest, StayVisitor
from anju.stays.ports import ReportQueue, RoomDirectory
from anju.stays.rules import (
    LONGEST_VISIT,
    AlreadyCheckedIn,
    BookingState,
    BookingStatus,
    HeadcountMismatch,
    IdentityNotVerified,
    NotCheckedIn,
    as_utc,
)
from anju.stays.service import BookingService

MAX_GUESTS = 50
MAX_REASON = 200
VISITOR_DOORS = ("room", "common", "both")


@dataclass(frozen=True)
class GuestIn:
    """One guest at check-in: their registered subject id and, optionally, their phone's SM2
    public key (an eKey is issued for it)."""

    subject_id: str
    holder_key: bytes | None = None


@dataclass
class GuestKeys:
    """What a guest is handed once at check-in (never stored in clear)."""

    subject_id: str
    grant_id: str
    passcode_id: str
    passcode: str
    ekey_id: str | None = None
    ekey_tokens: dict[str, str] = field(default_factory=dict)
    face_consented: bool = False


@dataclass
class CheckedIn:
    booking: Booking
    guests: list[GuestKeys]


@dataclass
class VisitorPass:
    visitor: StayVisitor
    passcode: str


class StayService(BookingService):
    """Check-in, check-out and visitors of one transaction (the caller commits)."""

    def __init__(
        self,
        platform: Platform,
        session: AsyncSession,
        *,
        rooms: RoomDirectory | None = None,
        reports: ReportQueue | None = None,
    ) -> None:
        super().__init__(platform, session, rooms=rooms)
        self.reports: ReportQueue = (
            reports if reports is not None else ReportingService(platform, session)
        )
        self.consent = ConsentService(platform, session)
        self.people = PeopleRepository(session)

    # --- checks ----------------------------------------------------------------------------
    async def _require_consent(self, org_id: str, subject_id: str) -> bool:
        """Refuse without the privacy policy and the regulator notice consented under the
        versions in force; whether the optional face consent is in force too."""
        needed = (
            (Purpose.IDENTITY_VERIFICATION, Category.IDENTITY_NUMBER),
            (Purpose.REGULATOR_REPORT, None),
        )
        for purpose, category in needed:
            answer = await self.consent.check(
                org_id, subject_id, purpose.value, None if category is None else category.value
            )
            if not answer.allowed:
                raise ConsentRequired(
                    "入住需要住客同意现行隐私政策和报送告知 / check-in needs the guest's consent "
                    "to the privacy notice and the regulator-reporting notice in force",
                    details={
                        "subject_id": subject_id,
                        "purpose": purpose.value,
                        "status": answer.status.value,
                    },
                )
        face = await self.consent.check(
            org_id,
            subject_id,
            Purpose.LOCK_CREDENTIAL_ISSUE.value,
            Category.BIOMETRIC_TEMPLATE.value,
        )
        return face.allowed

    async def _require_verified(self, org_id: str, subject_id: str) -> None:
        """The subject is a registered person of this organisation whose identity was
        verified (a rejected verification registers nobody)."""
        for verification in await self.people.verifications_of(subject_id):
            if verification.outcome != "verified" or verification.person_id is None:
                continue
            person = await self.people.person(verification.person_id)
            if person is not None and person.status == "active" and person.org_id == org_id:
                return
        raise IdentityNotVerified(
            "住客未完成实名核验 / the guest has no verified registration here",
            details={"subject_id": subject_id},
        )

    # --- check-in --------------------------------------------------------------------------
    async def check_in(
        self,
        actor: str,
        org_id: str,
        booking_id: str,
        guests: Sequence[GuestIn],
        *,
        override_reason: str | None = None,
    ) -> CheckedIn:
        """Check the guests in; their passcodes and eKey tokens are returned here, once."""
        if not 0 < len(guests) <= MAX_GUESTS:
            raise InvalidInput(f"guests: 1–{MAX_GUESTS}", details={"field": "guests"})
        subjects = [g.subject_id for g in guests]
        if len(set(subjects)) != len(subjects):
            raise InvalidInput("住客重复 / a guest is listed twice", details={"field": "guests"})
        if override_reason is not None and not 0 < len(override_reason.strip()) <= MAX_REASON:
            raise InvalidInput(
                f"override reason: 1–{MAX_REASON} characters", details={"field": "reason"}
            )
        booking = await self.get(org_id, booking_id, for_update=True)
        if booking.status == BookingStatus.CHECKED_IN:
            raise AlreadyCheckedIn("该预订已入住 / the booking is already checked in")
        if booking.status != BookingStatus.BOOKED:
            raise BookingState(
                f"预订状态为 {booking.status}，不能入住 / a {booking.status} booking cannot "
                "check in",
                details={"status": booking.status},
            )
        now = self.clock.now()
        if now >= booking.ends_at:
            raise BookingState(
                "预订已过期 / the booking period is over", details={"status": "period_over"}
            )
        if len(guests) != booking.headcount and override_reason is None:
            raise HeadcountMismatch(
                "入住人数与预订不符 / the number of guests differs from the booking",
                details={"expected": booking.headcount, "given": len(guests)},
            )
        face: dict[str, bool] = {}
        for guest in guests:  # every check before anything is written
            face[guest.subject_id] = await self._require_consent(org_id, guest.subject_id)
            await self._require_verified(org_id, guest.subject_id)
        doors = await self.rooms.doors_of_room(org_id, booking.room_id)
        device_ids = tuple(dict.fromkeys(doors.room_locks + doors.common_doors))
        grants = GrantService(self.platform, self.session)
        credentials = CredentialService(self.platform, self.session)
        handed: list[GuestKeys] = []
        for guest in guests:
            spec = GrantSpec(
                guest.subject_id,
                "guest",
                DoorSelector(device_ids),
                valid_until=booking.ends_at,
                valid_from=booking.starts_at if booking.starts_at > now else None,
            )
            grant, _ = await grants.create(actor, org_id, spec)
            passcode, digits = await credentials.issue_passcode(actor, org_id, grant.id)
            keys = GuestKeys(
                guest.subject_id, grant.id, passcode.id, digits,
                face_consented=face[guest.subject_id],
            )  # fmt: skip
            if guest.holder_key is not None:
                ekey, tokens = await credentials.issue_ekey(
                    actor, org_id, grant.id, guest.holder_key
                )
                keys.ekey_id, keys.ekey_tokens = ekey.id, tokens
            self.repo.add(
                StayGuest(
                    booking_id=booking.id,
                    subject_id=guest.subject_id,
                    grant_id=grant.id,
                    passcode_id=passcode.id,
                    ekey_id=keys.ekey_id,
                    face_consented=keys.face_consented,
                    checked_in_at=now,
                )
            )
            await self.reports.queue_check_in(
                org_id=org_id,
                stay_id=booking.id,
                subject_id=guest.subject_id,
                room_id=booking.room_id,
                at=now,
            )
            handed.append(keys)
        booking.status = BookingStatus.CHECKED_IN.value
        booking.checked_in_at = booking.updated_at = now
        booking.headcount_override = len(guests) != booking.headcount
        if booking.headcount_override:
            booking.override_reason = override_reason
        await self.session.flush()
        await self.record(
            "stays.checked_in",
            actor,
            booking,
            guests=len(guests),
            headcount_override=booking.headcount_override,
            ekeys=sum(k.ekey_id is not None for k in handed),
        )
        return CheckedIn(booking, handed)

    # --- check-out -------------------------------------------------------------------------
    async def check_out(self, actor: str, org_id: str, booking_id: str) -> Booking:
        """End every grant of the stay (the locks wipe the guests), start the retention
        clock of each guest and queue the check-out reports."""
        booking = await self.get(org_id, booking_id, for_update=True)
        if booking.status != BookingStatus.CHECKED_IN:
            raise NotCheckedIn(
                "该预订未入住 / the booking is not checked in", details={"status": booking.status}
            )
        now = self.clock.now()
        grants = GrantService(self.platform, self.session)
        retention = RetentionService(self.platform, self.session)
        for visitor in await self.repo.visitors(booking.id):
            await self._end_grant(grants, actor, org_id, visitor.grant_id)
        for guest in await self.repo.guests(booking.id):
            await self._end_grant(grants, actor, org_id, guest.grant_id)
            await retention.mark_anchor(
                actor, guest.subject_id, RetentionAnchor.CHECK_OUT.value, org_id=org_id, at=now
            )
            await self.reports.queue_check_out(
                org_id=org_id,
                stay_id=booking.id,
                subject_id=guest.subject_id,
                room_id=booking.room_id,
                at=now,
            )
        await retention.mark_anchor(
            actor, booking.contact_subject, RetentionAnchor.CHECK_OUT.value, org_id=org_id, at=now
        )
        booking.status = BookingStatus.CHECKED_OUT.value
        booking.checked_out_at = booking.ended_at = booking.updated_at = now
        await self.session.flush()
        await self.record("stays.checked_out", actor, booking, early=now < booking.ends_at)
        return booking

    @staticmethod
    async def _end_grant(grants: GrantService, actor: str, org_id: str, grant_id: str) -> None:
        grant = await grants.get(org_id, grant_id, for_update=True)
        if grant.status == GrantStatus.ACTIVE:
            await grants.end(grant, actor, GrantStatus.REVOKED, "checked_out")

    # --- visitors --------------------------------------------------------------------------
    async def add_visitor(
        self,
        actor: str,
        org_id: str,
        booking_id: str,
        subject_id: str,
        *,
        valid_from: datetime,
        valid_until: datetime,
        doors: str = "both",
    ) -> VisitorPass:
        """A temporary pass (≤ 24 h, within the stay) for a registered visitor of a checked-in
        stay: a passcode on the host's room and/or the common doors, returned once."""
        if doors not in VISITOR_DOORS:
            raise InvalidInput(
                "doors: room | common | both", details={"field": "doors", "known": VISITOR_DOORS}
            )
        start, end = as_utc(valid_from, "valid_from"), as_utc(valid_until, "valid_until")
        if not start < end or end - start > LONGEST_VISIT:
            raise InvalidInput(
                "访客通行证最长 24 小时 / a visitor pass lasts more than 0 and at most 24 hours",
                details={"field": "valid_until"},
            )
        booking = await self.get(org_id, booking_id, for_update=True)
        if booking.status != BookingStatus.CHECKED_IN:
            raise NotCheckedIn(
                "访客只能访问已入住的住客 / visitors need a checked-in stay",
                details={"status": booking.status},
            )
        if start < booking.starts_at or end > booking.ends_at:
            raise InvalidInput(
                "访客时段须在住宿期内 / a visit must fall within the stay",
                details={"field": "valid_until"},
            )
        await self._require_verified(org_id, subject_id)
        found = await self.rooms.doors_of_room(org_id, booking.room_id)
        chosen = (found.room_locks if doors != "common" else ()) + (
            found.common_doors if doors != "room" else ()
        )
        if not chosen:
            raise InvalidInput("没有可授权的门 / no such doors here", details={"field": "doors"})
        now = self.clock.now()
        grant, _ = await GrantService(self.platform, self.session).create(
            actor,
            org_id,
            GrantSpec(
                subject_id,
                "visitor",
                DoorSelector(tuple(dict.fromkeys(chosen))),
                valid_until=end,
                valid_from=start if start > now else None,
            ),
        )
        passcode, digits = await CredentialService(self.platform, self.session).issue_passcode(
            actor, org_id, grant.id
        )
        visitor = StayVisitor(
            id=new_id(),
            booking_id=booking.id,
            org_id=org_id,
            subject_id=subject_id,
            grant_id=grant.id,
            passcode_id=passcode.id,
            doors=doors,
            valid_from=start,
            valid_until=end,
            created_by=actor,
            created_at=now,
        )
        self.repo.add(visitor)
        await self.session.flush()
        await self.record("stays.visitor.added", actor, booking, visitor=visitor.id, doors=doors)
        return VisitorPass(visitor, digits)

    async def guests_of(self, org_id: str, booking_id: str) -> Sequence[StayGuest]:
        booking = await self.get(org_id, booking_id)
        return await self.repo.guests(booking.id)

    async def visitors_of(self, org_id: str, booking_id: str) -> Sequence[StayVisitor]:
        booking = await self.get(org_id, booking_id)
        return await self.repo.visitors(booking.id)
