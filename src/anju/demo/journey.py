"""The stay journey, step by step; each step checks what it should have caused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.access.credentials.service import CredentialService
from anju.access.freeze import FreezeService
from anju.access.grants import DoorSelector, GrantService, GrantSpec
from anju.access.models import AccessDelivery, AccessLockOperation
from anju.alarms.models import Alarm
from anju.audit.service import AuditLog
from anju.background import platform_sweepers
from anju.consent.service import ConsentService
from anju.demo.guests import Guest
from anju.demo.notices import DEMO_NOTICES
from anju.demo.steps import Journey, expect
from anju.demo.world import ACTOR, DemoWorld
from anju.device.access.phone import PhoneWallet
from anju.errors import AnjuError
from anju.people.consent_gate import identity_verification_consent
from anju.people.registration import Registrar
from anju.people.service import Actor, PeopleService, new_subject_id, view_of
from anju.people.verification.base import NetworkCheck
from anju.people.verification.ctid import CtidProvider
from anju.retention.service import RetentionService
from anju.retention.tasks import run_sweep
from anju.unlocks.models import UnlockRecord

WAIT_SECONDS = 30.0
#: Past the longest retention of a guest's identity data after check-out (subject data key: 30 d).
RETENTION_JUMP_DAYS = 31


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
    """The journey over one world and its guests (the first two take part)."""

    def __init__(self, world: DemoWorld, guests: list[Guest], journey: Journey) -> None:
        self.world = world
        self.platform = world.platform
        self.journey = journey
        self.guests = [
            GuestState(g, new_subject_id(), face_consent=i != 1) for i, g in enumerate(guests[:2])
        ]
        self.freeze_id = ""

    async def run(self) -> bool:
        steps: list[tuple[str, Callable[[], Awaitable[str]]]] = [
            ("告知发布 / Notices published", self.publish_notices),
            ("告知与同意 / Notice and consent", self.consent),
            ("实名核验 / Real-name verification", self.verify_identities),
            ("入住 / Check-in: credentials on the locks", self.check_in),
            ("密码开锁 / Unlock with the passcode", self.unlock_with_passcode),
            ("电子钥匙开锁 / Unlock with the eKey", self.unlock_with_ekey),
            ("错误密码锁定与告警 / Wrong-code lockout and alarm", self.wrong_code_lockout),
            ("冻结与解冻 / Freeze and unfreeze", self.freeze_and_unfreeze),
            ("退房与门锁清除 / Check-out and lock wipe", self.check_out),
            ("保存期清理 / Retention sweep", self.retention_sweep),
            ("审计日志校验 / Audit log verified", self.verify_audit),
        ]
        for title, action in steps:
            if not await self.journey.step(title, action):
                return False
        return True

    # --- steps ----------------------------------------------------------------------------
    async def publish_notices(self) -> str:
        async with self.platform.db.transaction() as session:
            consent = ConsentService(self.platform, session)
            published = [await consent.publish(self.world.org_id, ACTOR, n) for n in DEMO_NOTICES]
        return "; ".join(f"{n.kind} v{n.version}" for n in published)

    async def consent(self) -> str:
        lines = []
        async with self.platform.db.transaction() as session:
            consent = ConsentService(self.platform, session)
            notices = {n.kind: n for n in await consent.current_notices(self.world.org_id)}
            for g in self.guests:
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
        for g in self.guests:
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
        doors = (room.device_id, entrance.device_id)
        lines = []
        for g in self.guests:
            phone = PhoneWallet()
            self.world.phones[g.subject_id] = phone
            async with self.platform.db.transaction() as session:
                grant, _ = await GrantService(self.platform, session).create(
                    ACTOR,
                    self.world.org_id,
                    GrantSpec(
                        g.subject_id,
                        "guest",
                        DoorSelector(doors),
                        valid_until=self.world.clock.now() + timedelta(days=2),
                    ),
                )
                credentials = CredentialService(self.platform, session)
                passcode, digits = await credentials.issue_passcode(
                    ACTOR, self.world.org_id, grant.id
                )
                ekey, tokens = await credentials.issue_ekey(
                    ACTOR, self.world.org_id, grant.id, phone.holder_key
                )
            g.grant_id, g.passcode_id, g.digits = grant.id, passcode.id, digits
            g.ekey_id, g.ekey_tokens = ekey.id, tokens
            for device_id in doors:
                await self._delivery_state(g.passcode_id, device_id, "installed")
            lines.append(
                f"{g.subject_id[:8]}…: passcode ******, eKey for {len(tokens)} doors; "
                "installed on room 101 and entrance A (signed lock receipts)"
            )
        return "\n".join(lines)

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
        return f"room 101 opened; the replayed proof was refused ({replay.reason})"

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

    async def freeze_and_unfreeze(self) -> str:
        g = self.guests[0]
        lock = self.world.lock("101")
        async with self.platform.db.transaction() as session:
            frozen = await FreezeService(self.platform, session).freeze(
                ACTOR, self.world.org_id, g.subject_id, "arrears"
            )
        await self._lock_operation(frozen.freeze.id, lock.device_id)
        refused = lock.firmware.access.enter_passcode(g.digits)
        expect(refused.reason == "frozen", f"refused as frozen (it said {refused.reason})")
        async with self.platform.db.transaction() as session:
            lifted = await FreezeService(self.platform, session).lift(
                ACTOR, self.world.org_id, frozen.freeze.id
            )
        await self._lock_operation(lifted.freeze.id, lock.device_id, op="unfreeze")
        expect(lock.firmware.access.enter_passcode(g.digits).granted, "opens once unfrozen")
        return "frozen on the lock (signed receipt) → refused; unfrozen → opens"

    async def check_out(self) -> str:
        lock = self.world.lock("101")
        for g in self.guests:
            async with self.platform.db.transaction() as session:
                await GrantService(self.platform, session).revoke(
                    ACTOR, self.world.org_id, g.grant_id, reason="checked_out"
                )
                await RetentionService(self.platform, session).mark_anchor(
                    ACTOR, g.subject_id, "check_out", org_id=self.world.org_id
                )
            await self._delivery_state(g.passcode_id, lock.device_id, "removed")
        expect(
            all(lock.firmware.access.store.of_subject(g.subject_id) == [] for g in self.guests),
            "the lock holds nothing of the guests",
        )
        refused = lock.firmware.access.enter_passcode(self.guests[0].digits)
        expect(not refused.granted, "the old passcode no longer opens")
        return "grants ended; room 101 and entrance A wiped the guests (signed receipts)"

    async def retention_sweep(self) -> str:
        self.world.clock.advance(days=RETENTION_JUMP_DAYS)
        report = await run_sweep(self.platform, registry=platform_sweepers())
        unreadable = 0
        for g in self.guests:
            async with self.platform.db.transaction() as session:
                try:
                    await PeopleService(self.platform, session).reveal(
                        Actor(ACTOR, self.world.org_id), g.person_id, ["name"], "subject_access"
                    )
                except AnjuError:
                    unreadable += 1
        expect(unreadable == len(self.guests), "the guests' data cannot be read any more")
        counts = ", ".join(f"{k}={v}" for k, v in report.counts.items() if v)
        return (
            f"{RETENTION_JUMP_DAYS} days later: {counts}; identity data unreadable (keys shredded)"
        )

    async def verify_audit(self) -> str:
        log = AuditLog(self.platform)
        async with self.platform.db.transaction() as session:
            await log.checkpoint(session)  # sign the head, so every entry is covered
        async with self.platform.db.transaction() as session:
            report = await log.verify(session, None)
        expect(report.ok, report.summary())
        return report.summary()

    # --- waiting for the locks --------------------------------------------------------------
    async def _delivery_state(self, credential_id: str, device_id: str, state: str) -> None:
        async def reached(session: AsyncSession) -> bool:
            row = await session.get(AccessDelivery, (credential_id, device_id))
            return row is not None and row.state == state

        await eventually(self.world, reached, f"credential {state} on {device_id[:8]}…")

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
