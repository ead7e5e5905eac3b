"""Stays test helpers: a hotel (org A of the access world) with its notices published, a room
whose lock is the access world's room lock and whose site's door group holds the entrance,
guests who consented and were verified at the desk, and bookings of that room."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from anju.consent.notices import NoticeContent, build_content
from anju.consent.service import ConsentService
from anju.kit.clock import FixedClock
from anju.people.consent_gate import identity_verification_consent
from anju.people.registration import Registrar
from anju.people.service import Actor, new_subject_id
from anju.people.verification.base import StaffCheck
from anju.platform import Platform
from anju.stays.journey import StayService
from anju.stays.models import Booking
from anju.stays.service import BookingDraft
from tests.support.access import AccessWorld, access_world
from tests.support.consent import privacy_policy
from tests.support.people import people
from tests.support.properties import bind_room_lock, property_tree, site_door_group

CLERK = "account:stays-desk"


def regulator_notice() -> NoticeContent:
    """The L6 notice: check-in identity is reported to the public security organ."""
    return build_content(
        "regulator_reporting",
        title_zh="向公安机关报送告知",
        title_en="Reporting to the police",
        text_zh="入住登记信息依法报送公安机关。",
        text_en="Check-in registration is reported to the police as the law requires.",
        items=[("regulator_report", ["name", "identity_number"], True)],
    )


def face_unlock_notice() -> NoticeContent:
    """The separate face notice of a hotel whose locks open by face (optional)."""
    return build_content(
        "face_recognition",
        title_zh="人脸识别单独同意",
        title_en="Face recognition (separate consent)",
        text_zh="人脸信息仅用于开锁，退房即删除。",
        text_en="Your face template is used only to unlock and is deleted at check-out.",
        items=[("lock_credential_issue", ["biometric_template"], False)],
    )


@dataclass
class StaysWorld:
    access: AccessWorld
    org: str
    room: str  # the property room's id
    versions: dict[str, int]
    registered: int = 0


async def stays_world(platform: Platform, clock: FixedClock, tmp_path: Path) -> StaysWorld:
    """Org A of the access world with its notices in force and a property room whose lock is
    the world's room lock; the entrance is in the site's door group."""
    w = await access_world(platform, clock, tmp_path)
    tree = await property_tree(platform, w.org_a, kind="hotel", room="101")
    await bind_room_lock(platform, tree, w.room.device_id)
    await site_door_group(platform, tree, "大门", w.entrance.device_id)
    versions = {}
    async with platform.db.transaction() as session:
        consent = ConsentService(platform, session)
        for content in (privacy_policy(), regulator_notice(), face_unlock_notice()):
            notice = await consent.publish(w.org_a, "account:dpo", content)
            versions[notice.kind] = notice.version
    return StaysWorld(w, w.org_a, tree.room_id, versions)


async def consent_to(
    platform: Platform, world: StaysWorld, subject: str, kind: str, purpose: str, action: str
) -> None:
    async with platform.db.transaction() as session:
        await ConsentService(platform, session).record(
            world.org, CLERK, subject_id=subject, kind=kind, version=world.versions[kind],
            purpose=purpose, action=action, channel="front_desk",
        )  # fmt: skip


async def guest(
    platform: Platform,
    world: StaysWorld,
    *,
    face: str | None = "given",
    regulator: bool = True,
    verified: bool = True,
) -> str:
    """A guest's subject id: privacy policy given (and registered at the desk when
    ``verified``), the regulator notice acknowledged unless told, face consent as told."""
    subject = new_subject_id()
    await consent_to(platform, world, subject, "privacy_policy", "identity_verification", "given")
    if regulator:
        await consent_to(
            platform, world, subject, "regulator_reporting", "regulator_report", "given"
        )
    if face is not None:
        await consent_to(
            platform, world, subject, "face_recognition", "lock_credential_issue", face
        )
    if verified:
        world.registered += 1
        application = people(world.registered + 1, seed=17)[world.registered]
        async with platform.db.transaction() as session:
            registrar = Registrar(
                platform, session, consent_check=identity_verification_consent(platform)
            )
            result = await registrar.register(
                Actor(CLERK, world.org),
                application,
                StaffCheck(original_document_checked=True),
                subject_id=subject,
            )
        assert result.outcome == "registered"
    return subject


@dataclass(frozen=True)
class Period:
    """A booking's period and headcount; the room comes from the world when booked."""

    start: datetime
    hours: float = 48
    headcount: int = 1


def draft(start: datetime, hours: float = 48, headcount: int = 1) -> Period:
    return Period(start, hours, headcount)


async def book(platform: Platform, world: StaysWorld, period: Period) -> Booking:
    """A direct booking of the world's room."""
    booking = BookingDraft(
        world.room, period.start, period.start + timedelta(hours=period.hours), period.headcount
    )
    async with platform.db.transaction() as session:
        return await StayService(platform, session).create(CLERK, world.org, booking)


class FakeOta:
    """A booking site's calendar export on a loopback port: serves ``calendar`` (bytes) at
    ``/ical/<room>.ics`` with ``status``; the test changes both between polls."""

    def __init__(self) -> None:
        self.calendar = b""
        self.status = 200
        self.requests = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/ical/101.ics"

    async def __aenter__(self) -> FakeOta:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            body = self.calendar
            head = (
                f"HTTP/1.1 {self.status} X\r\nContent-Type: text/calendar; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        finally:
            writer.close()


def vevent(uid: str, start: str, end: str, status: str = "CONFIRMED", **extra: str) -> str:
    lines = ["BEGIN:VEVENT", f"UID:{uid}", start, end, f"STATUS:{status}"]
    lines += [f"{k}:{v}" for k, v in extra.items()]
    return "\r\n".join([*lines, "END:VEVENT"])


def vcalendar(*events: str) -> bytes:
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Fake OTA//EN\r\n"
    return (head + "\r\n".join(events) + "\r\nEND:VCALENDAR\r\n").encode()
