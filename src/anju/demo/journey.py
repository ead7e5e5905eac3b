"""The stay journey, step by step; each step checks what it should have caused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.credentials.service import CredentialService
from anju.access.models import AccessDelivery, AccessFreeze, AccessLockOperation
from anju.alarms.models import Alarm
from anju.audit.service import AuditLog
from anju.background import platform_sweepers
from anju.consent.service import ConsentService
from anju.demo.guests import Guest, generated_guests
from anju.demo.notices import DEMO_NOTICES
from anju.demo.steps import Journey, expect
from anju.demo.world import ACTOR, DemoWorld
from anju.device.access.phone import PhoneWallet
from anju.errors import AnjuError
from anju.leases.rules import SHANGHAI, local_date
from anju.leases.service import LeaseService, LeaseTerms, PaymentIn
from anju.people.consent_gate import identity_verification_consent
from anju.people.registration import Registrar
from anju.people.service import Actor, PeopleService, new_subject_id, view_of
from anju.people.verification.base import NetworkCheck
from anju.people.verification.ctid import CtidProvider
from anju.properties.service import PropertyService
from anju.reporting.models import Report
from anju.reporting.tasks import ReportSender
from anju.retention.tasks import run_sweep
from anju.stays.journey import GuestIn, StayService
from anju.stays.rules import BookingOverlap
from anju.stays.service import BookingDraft
from anju.unlocks.models import UnlockRecord

WAIT_SECONDS = 30.0
#: Past the longest retention of a guest's identity data after check-out (subject data key: 30 d).
RETENTION_JUMP_DAYS = 31
STAY_DAYS = 14
MONTHLY_RENT_FEN = 320_000  # ¥3,200.00


@dataclass
class GuestState:
    guest: Guest
    subject_id: str
    face_consent: bool
    person_id: str = ""
    grant_id: str = ""
    passcode_id: str = ""
    digits: str = ""
    ekey_id: str = ""
    ekey_tokens: dict[str, str] = field(default_factory=dict)


async def eventually(
    world: DemoWorld, check: Callable[[AsyncSession], Awaitable[Any]], what: str
) -> Any:
    """Poll the database until ``check`` answers something truthy (StepFailed after 30 s)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        async with world.platform.db.transaction() as session:
            found = await check(session)
        if found:
            return found
        expect(time.monotonic() < deadline, f"{what} — not within {WAIT_SECONDS:.0f} s")
        await asyncio.sleep(0.1)


class StayJourney:
    """The journey over one world and its people: the first two are the hotel's guests, the
    third (generated when not given) the tenant of room 102."""

    def __init__(self, world: DemoWorld, guests: list[Guest], journey: Journey) -> None:
        self.world = world
        self.platform = world.platform
        self.journey = journey
        self.guests = [
            GuestState(g, new_subject_id(), face_consent=i != 1) for i, g in enumerate(guests[:2])
        ]
        tenant = guests[2] if len(guests) > 2 else generated_guests(3)[2]
        self.tenant = GuestState(tenant, new_subject_id(), face_consent=False)
        self.people = [*self.guests, self.tenant]
        self.booking_id = ""
        self.lease_id = ""

    async def run(self) -> bool:
        steps: list[tuple[str, Callable[[], Awaitable[str]]]] = [
            ("物业与门锁 / Property and locks", self.show_property),
            ("告知发布 / Notices published", self.publish_notices),
            ("预订 / Booking", self.book),
            ("告知与同意 / Notice and consent", self.consent),
            ("实名核验 / Real-name verification", self.verify_identities),
            ("入住 / Check-in: credentials on the locks", self.check_in),
            ("密码开锁 / Unlock with the passcode", self.unlock_with_passcode),
            ("电子钥匙开锁 / Unlock with the eKey", self.unlock_with_ekey),
            ("错误密码锁定与告警 / Wrong-code lockout and alarm", self.wrong_code_lockout),
            ("欠租冻结与缴费解冻 / Lease arrears: freeze, pay, unfreeze", self.lease_arrears),
            ("退房与门锁清除 / Check-out and lock wipe", self.check_out),
            ("治安上报 / Reports delivered to the regulator", self.deliver_reports),
            ("保存期清理 / Retention sweep", self.retention_sweep),
            ("审计日志校验 / Audit log verified", self.verify_audit),
        ]
        for title, action in steps:
            if not await self.journey.step(title, action):
                return False
        return True

    # --- steps ----------------------------------------------------------------------------
    async def show_property(self) -> str:
        async with self.platform.db.transaction() as session:
            properties = PropertyService(self.platform, session)
            address = await properties.standard_address(self.world.org_id, self.world.rooms["101"])
            doors = await properties.doors_of_room(self.world.org_id, self.world.rooms["101"])
        expect(
            doors.room_locks == (self.world.lock("101").device_id,)
            and doors.common_doors == (self.world.lock("A").device_id,),
            "room 101 opens with its own lock and the entrance",
        )
        online = len(self.world.gateway.ingest.held_devices())
        return f"{address}; 3 locks made one-device-one-key, {online} online over MQTT"

    async def publish_notices(self) -> str:
        async with self.platform.db.transaction() as session:
            consent = ConsentService(self.platform, session)
            published = [await consent.publish(self.world.org_id, ACTOR, n) for n in DEMO_NOTICES]
        return "; ".join(f"{n.kind} v{n.version}" for n in published)

    async def book(self) -> str:
        starts = self.world.clock.now().astimezone(SHANGHAI)
        draft = BookingDraft(
            self.world.rooms["101"], starts, starts + timedelta(days=STAY_DAYS), len(self.guests)
        )
        async with self.platform.db.transaction() as session:
            booking = await StayService(self.platform, session).create(
                ACTOR, self.world.org_id, draft
            )
            self.booking_id = booking.id
        overlapping = BookingDraft(
            self.world.rooms["101"], starts + timedelta(days=1), starts + timedelta(days=2), 1
        )
        try:
            async with self.platform.db.transaction() as session:
                await StayService(self.platform, session).create(
                    ACTOR, self.world.org_id, overlapping
                )
        except BookingOverlap as refused:
            why = refused.code
        else:
            why = ""
        expect(why == "booking_overlap", "an overlapping booking of room 101 is refused")
        return (
            f"room 101, {len(self.guests)} guests, {STAY_DAYS} nights from "
            f"{starts:%Y-%m-%d %H:%M %z}; an overlapping booking was refused [{why}]"
        )

    async def consent(self) -> str:
        lines = []
        async with self.platform.db.transaction() as session:
            consent = ConsentService(self.platform, session)
            notices = {n.kind: n for n in await consent.current_notices(self.world.org_id)}
            for g in self.people:
                answers = [
                    ("privacy_policy", "identity_verification", "given"),
                    ("regulator_reporting", "regulator_report", "given"),
                    (
                        "face_recognition",
                        "lock_credential_issue",
                        "given" if g.face_consent else "refused",
                    ),
                ]
                for kind, purpose, action in answers:
                    await consent.record(
                        self.world.org_id,
                        ACTOR,
                        subject_id=g.subject_id,
                        kind=kind,
                        version=notices[kind].version,
                        purpose=purpose,
                        action=action,
                        channel="kiosk",
                    )
                face = await consent.check(
                    self.world.org_id, g.subject_id, "lock_credential_issue", "biometric_template"
                )
                expect(face.allowed == g.face_consent, "face consent as answered")
                lines.append(
                    f"{g.subject_id[:8]}…: privacy ✓ regulator ✓ face "
                    + ("✓" if g.face_consent else "✗ (refused: passcode and eKey only)")
                )
        return "\n".join(lines)

    async def verify_identities(self) -> str:
        provider = NetworkCheck(CtidProvider(self.world.ctid.config(), self.world.clock))
        lines = []
        for g in self.people:
            self.world.ctid.add_identity("resident_id", g.guest.id_number, g.guest.name)
            async with self.platform.db.transaction() as session:
                registrar = Registrar(
                    self.platform,
                    session,
                    consent_check=identity_verification_consent(self.platform),
                )
                result = await registrar.register(
                    Actor(ACTOR, self.world.org_id),
                    g.guest.application(),
                    provider,
                    subject_id=g.subject_id,
                )
            expect(result.outcome == "registered", f"registered, not {result.outcome}")
            assert result.person_id is not None
            g.person_id = result.person_id
            async with self.platform.db.transaction() as session:
                person = await PeopleService(self.platform, session).person(
                    g.person_id, self.world.org_id
                )
                masked = view_of(person).masked
            lines.append(
                f"{g.subject_id[:8]}…: CTID ✓, signed statement kept; stored sealed, shown "
                f"masked: {masked.get('name')} {masked.get('document_number')}"
            )
        return "\n".join(lines)

    async def check_in(self) -> str:
        room, entrance = self.world.lock("101"), self.world.lock("A")
        arriving = []
        for g in self.guests:
            phone = PhoneWallet()
            self.world.phones[g.subject_id] = phone
            arriving.append(
                GuestIn(g.subject_id, phone.holder_key if g is self.guests[1] else None)
            )
        async with self.platform.db.transaction() as session:
            done = await StayService(self.platform, session).check_in(
                ACTOR, self.world.org_id, self.booking_id, arriving
            )
        for g, keys in zip(self.guests, done.guests, strict=True):
            g.grant_id, g.passcode_id, g.digits = keys.grant_id, keys.passcode_id, keys.passcode
            g.ekey_id, g.ekey_tokens = keys.ekey_id or "", keys.ekey_tokens
            for device_id in (room.device_id, entrance.device_id):
                await self._delivery_state(g.passcode_id, device_id, "installed")
        queued = await self._reports("check_in")
        expect(len(queued) == len(self.guests), "one regulator report queued per guest")
        return (
            f"{len(self.guests)} guests checked in: a passcode each (shown once), an eKey for "
            "the second guest's phone; installed on room 101 and the entrance (signed lock "
            f"receipts); {len(queued)} check-in reports queued for the regulator"
        )

    async def unlock_with_passcode(self) -> str:
        g = self.guests[0]
        lock = self.world.lock("101")
        verdict = lock.firmware.access.enter_passcode(g.digits)
        expect(verdict.granted, f"room 101 opens (it said {verdict.reason})")
        record = await self._unlock_record(verdict.event_id)
        expect(
            (record.result, record.method, record.credential_id)
            == ("granted", "passcode", g.passcode_id),
            "the signed unlock record names the passcode",
        )
        expect(g.digits not in record.record, "the record never holds the code")
        return "room 101 opened; signed unlock record stored (credential id, no code)"

    async def unlock_with_ekey(self) -> str:
        g = self.guests[1]
        lock = self.world.lock("101")
        phone = self.world.phones[g.subject_id]
        challenge = lock.firmware.access.ekey_challenge()
        proof = phone.prove(challenge, device_id=lock.device_id, key_id=g.ekey_id)
        token = g.ekey_tokens[lock.device_id]
        verdict = lock.firmware.access.present_ekey(token, proof, challenge)
        expect(verdict.granted, f"room 101 opens for the eKey (it said {verdict.reason})")
        replay = lock.firmware.access.present_ekey(token, proof, challenge)
        expect(not replay.granted, "a replayed proof is refused")
        await self._unlock_record(verdict.event_id)
        return f"room 101 opened by the phone; the replayed proof was refused ({replay.reason})"

    async def wrong_code_lockout(self) -> str:
        lock = self.world.lock("101")
        g = self.guests[0]
        wrong = "0" * len(g.digits) if g.digits != "0" * len(g.digits) else "1" * len(g.digits)
        for _ in range(5):
            expect(not lock.firmware.access.enter_passcode(wrong).granted, "a wrong code opens")
        locked = lock.firmware.access.enter_passcode(g.digits)
        expect(locked.reason == "locked_out", "the keypad is locked, even for the right code")

        async def alarm(session: AsyncSession) -> Alarm | None:
            query = select(Alarm).where(
                Alarm.device_id == lock.device_id, Alarm.kind == "wrong_attempts"
            )
            return (await session.execute(query)).scalars().first()

        raised = await eventually(self.world, alarm, "the wrong-attempts alarm")
        self.world.clock.advance(minutes=6)  # the lockout window passes
        expect(lock.firmware.access.enter_passcode(g.digits).granted, "opens after the window")
        return f"5 wrong codes → keypad locked; alarm '{raised.kind}' ({raised.severity}) raised"

    async def lease_arrears(self) -> str:
        t = self.tenant
        lock = self.world.lock("102")
        today = local_date(self.world.clock.now())
        terms = LeaseTerms(
            self.world.rooms["102"],
            (t.subject_id,),
            today,
            today + timedelta(days=364),
            MONTHLY_RENT_FEN,
            due_day=min(today.day, 28),
            grace_days=3,
        )
        async with self.platform.db.transaction() as session:
            leases = LeaseService(self.platform, session)
            view = await leases.activate(
                ACTOR,
                self.world.org_id,
                (await leases.create(ACTOR, self.world.org_id, terms)).lease.id,
            )
            self.lease_id = view.lease.id
            grant_id = view.tenants[0].grant_id
            assert grant_id is not None
            passcode, digits = await CredentialService(self.platform, session).issue_passcode(
                ACTOR, self.world.org_id, grant_id
            )
        await self._delivery_state(passcode.id, lock.device_id, "installed")
        expect(lock.firmware.access.enter_passcode(digits).granted, "the tenant's room opens")
        first = view.instalments[0]
        # Past the first due date and the grace period, with the rent unpaid.
        overdue_at = datetime.combine(
            first.due_date + timedelta(days=terms.grace_days or 0) + timedelta(days=1),
            datetime.min.time().replace(hour=10),
            SHANGHAI,
        )
        self.world.clock.advance(seconds=(overdue_at - self.world.clock.now()).total_seconds())
        async with self.platform.db.transaction() as session:
            swept = await LeaseService(self.platform, session).sweep(self.world.clock.now())
        expect(swept.frozen == [self.lease_id], f"the sweep froze the lease ({swept})")
        freeze = await self._freeze_of(t.subject_id)
        await self._lock_operation(freeze, lock.device_id)
        refused = lock.firmware.access.enter_passcode(digits)
        expect(refused.reason == "frozen", f"refused as frozen (it said {refused.reason})")
        payment = PaymentIn(first.amount_fen, self.world.clock.now(), "demo-transfer-1", "pay-1")
        async with self.platform.db.transaction() as session:
            leases = LeaseService(self.platform, session)
            await leases.pay(ACTOR, self.world.org_id, self.lease_id, payment)
            _, replayed = await leases.pay(ACTOR, self.world.org_id, self.lease_id, payment)
        expect(replayed, "a replayed payment notification is applied once")
        await self._lock_operation(freeze, lock.device_id, op="unfreeze")
        expect(lock.firmware.access.enter_passcode(digits).granted, "opens once paid")
        return (
            f"lease of room 102 at ¥{MONTHLY_RENT_FEN / 100:,.2f}/month; first rent due "
            f"{first.due_date} unpaid past 3 days' grace → tenant frozen on the lock (signed "
            "receipt) → refused; payment recorded (replay applied once) → unfrozen at once → opens"
        )

    async def check_out(self) -> str:
        lock = self.world.lock("101")
        async with self.platform.db.transaction() as session:
            await StayService(self.platform, session).check_out(
                ACTOR, self.world.org_id, self.booking_id
            )
        for g in self.guests:
            await self._delivery_state(g.passcode_id, lock.device_id, "removed")
        expect(
            all(lock.firmware.access.store.of_subject(g.subject_id) == [] for g in self.guests),
            "the lock holds nothing of the guests",
        )
        refused = lock.firmware.access.enter_passcode(self.guests[0].digits)
        expect(not refused.granted, "the old passcode no longer opens")
        queued = await self._reports("check_out")
        expect(len(queued) == len(self.guests), "one check-out report per guest")
        return (
            "grants ended; room 101 and the entrance wiped the guests (signed receipts); "
            f"retention clock started; {len(queued)} check-out reports queued"
        )

    async def deliver_reports(self) -> str:
        regulator = self.world.regulator
        sender = ReportSender(self.platform)
        try:
            regulator.fail_with = 503  # the regulator is down when the sender first tries
            await sender.send_due()
            expect(not regulator.received.reports, "nothing is accepted while it is down")
            regulator.fail_with = None
            for _ in range(20):  # back-off is capped at 1 s in the demo
                self.world.clock.advance(seconds=2)
                await sender.send_due()
                if not await self._reports(status="pending"):
                    break
        finally:
            await sender.aclose()
        delivered = await self._reports(status="delivered")
        expect(not await self._reports(status="pending"), "every report delivered")
        expect(
            {r.id for r in delivered} <= set(regulator.received.reports),
            "the regulator opened and verified each one",
        )
        expect(regulator.received.duplicates == 0, "each report was accepted exactly once")
        return (
            f"regulator down (503) → reports kept and retried → {len(delivered)} delivered, each "
            "SM2-signed then SM4-enveloped to the regulator's key, opened and verified there, "
            "none twice"
        )

    async def retention_sweep(self) -> str:
        self.world.clock.advance(days=RETENTION_JUMP_DAYS)
        report = await run_sweep(self.platform, registry=platform_sweepers())
        unreadable = 0
        for g in self.guests:
            if not await self._readable(g):
                unreadable += 1
        expect(unreadable == len(self.guests), "the guests' data cannot be read any more")
        expect(await self._readable(self.tenant), "the tenant's data is kept (lease running)")
        counts = ", ".join(f"{k}={v}" for k, v in report.counts.items() if v)
        return (
            f"{RETENTION_JUMP_DAYS} days after check-out: {counts}; the guests' identity data "
            "is unreadable (data keys shredded); the tenant's is kept"
        )

    async def verify_audit(self) -> str:
        log = AuditLog(self.platform)
        async with self.platform.db.transaction() as session:
            await log.checkpoint(session)  # sign the head, so every entry is covered
        async with self.platform.db.transaction() as session:
            report = await log.verify(session, None)
        expect(report.ok, report.summary())
        return report.summary()

    # --- reading back -----------------------------------------------------------------------
    async def _readable(self, g: GuestState) -> bool:
        async with self.platform.db.transaction() as session:
            try:
                await PeopleService(self.platform, session).reveal(
                    Actor(ACTOR, self.world.org_id), g.person_id, ["name"], "subject_access"
                )
            except AnjuError:
                return False
        return True

    async def _reports(self, kind: str | None = None, status: str | None = None) -> list[Report]:
        async with self.platform.db.transaction() as session:
            query = select(Report).where(Report.org_id == self.world.org_id)
            if kind is not None:
                query = query.where(Report.kind == kind)
            if status is not None:
                query = query.where(Report.status == status)
            return list((await session.execute(query)).scalars())

    async def _freeze_of(self, subject_id: str) -> str:
        async def frozen(session: AsyncSession) -> str | None:
            query = select(AccessFreeze.id).where(
                AccessFreeze.subject_id == subject_id, AccessFreeze.status == "frozen"
            )
            return (await session.execute(query)).scalars().first()

        freeze_id: str = await eventually(self.world, frozen, "the tenant's freeze")
        return freeze_id

    async def _delivery_state(self, credential_id: str, device_id: str, state: str) -> None:
        async def reached(session: AsyncSession) -> bool:
            row = await session.get(AccessDelivery, (credential_id, device_id))
            return row is not None and row.state == state

        online = device_id in self.world.gateway.ingest.held_devices()
        where = f"{device_id[:8]}… ({'online' if online else 'offline'} when asked)"
        await eventually(self.world, reached, f"credential {state} on {where}")

    async def _lock_operation(self, freeze_id: str, device_id: str, op: str = "freeze") -> None:
        async def applied(session: AsyncSession) -> bool:
            query = select(AccessLockOperation).where(
                AccessLockOperation.freeze_id == freeze_id,
                AccessLockOperation.device_id == device_id,
                AccessLockOperation.op == op,
            )
            row = (await session.execute(query)).scalars().first()
            return row is not None and row.state == "applied"

        await eventually(self.world, applied, f"{op} applied on the lock")

    async def _unlock_record(self, event_id: str) -> UnlockRecord:
        async def stored(session: AsyncSession) -> UnlockRecord | None:
            query = select(UnlockRecord).where(UnlockRecord.event_id == event_id)
            return (await session.execute(query)).scalar_one_or_none()

        record: UnlockRecord = await eventually(self.world, stored, "the unlock record")
        return record
