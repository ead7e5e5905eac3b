"""Test helpers of the people domain: valid document numbers, varied names, a fake CTID service
run on loopback, and registrations as a front-desk clerk would make them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from anju.consent.service import ConsentService
from anju.kit.clock import Clock
from anju.people.application import Application
from anju.people.service import new_subject_id
from anju.people.validation import credit_code, resident_id
from anju.people.verification.ctid import CtidProvider
from anju.people.verification.fake_ctid import FakeCtidService
from anju.platform import Platform
from tests.support.consent import privacy_policy

#: Names across scripts: rare CJK (Extension B and later), the middle dot, compound surnames.
NAMES = [
    "张三", "欧阳娜娜", "买买提·艾力", "𠮷田優子", "司马相如", "王𪚥", "李𬌗", "阿依古丽·吐尔逊",
    "赵钱孙", "诸葛亮亮", "Jean-Luc Picard", "O'Neil Smith", "María José", "Nguyễn Văn An",
    "上官婉儿", "𡈼龙", "皇甫谧", "尼格买提·热合曼", "古力娜扎", "慕容复",
]  # fmt: skip


def resident_id_number(region: str, born: str, sequence: int) -> str:
    """A resident ID number with a correct check character."""
    first17 = f"{region}{born}{sequence:03d}"
    return first17 + resident_id.check_character(first17)


def credit_code_of(first17: str) -> str:
    return first17 + credit_code.check_character(first17)


def people(count: int, seed: int = 6) -> list[Application]:
    """``count`` distinct individuals with valid documents, phones, e-mails and addresses."""
    rng = random.Random(seed)
    regions = ["110105", "310104", "440305", "650102", "510107", "330106"]
    out = []
    for i in range(count):
        base = NAMES[i % len(NAMES)]
        # Past the first round, make each name distinct in its own script.
        suffix = (
            chr(0x4E00 + 37 * i)
            if base[0] > "\u2e80"
            else f" {chr(65 + i % 26)}{chr(97 + i // 26)}"
        )
        name = base if i < len(NAMES) else base + suffix
        born = f"{rng.randint(1940, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        out.append(
            Application(
                kind="individual",
                document_type="resident_id",
                document_number=resident_id_number(rng.choice(regions), born, 100 + i),
                name=name,
                phone=f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}",
                email=f"guest{i:03d}.{rng.randint(1000, 9999)}@example.cn",
                address=f"北京市朝阳区建国路{rng.randint(1, 400)}号{i}栋{rng.randint(100, 2999)}室",
            )
        )
    return out


@dataclass
class Ctid:
    service: FakeCtidService
    provider: CtidProvider

    def knows(self, application: Application) -> None:
        self.service.add_identity(
            application.document_type, application.document_number, application.name
        )


@contextmanager
def fake_ctid(clock: Clock) -> Iterator[Ctid]:
    """A fake CTID service on a loopback port and a provider speaking to it."""
    service = FakeCtidService(now=lambda: clock.now().timestamp())
    service.start()
    try:
        yield Ctid(service, CtidProvider(service.config(), clock))
    finally:
        service.stop()


async def member_with_second_factor(platform, clock, admin, login: str, role: str) -> str:  # type: ignore[no-untyped-def]
    """A member of ``admin``'s organisation holding ``role`` whose session has just verified a
    TOTP second factor (enrolled now); its session token."""
    from urllib.parse import parse_qs, urlparse

    from anju.accounts import totp
    from tests.support.accounts import as_principal, login_token, make_member_with_role

    admin_token = await login_token(platform, admin.login)
    token = await make_member_with_role(platform, clock, admin, admin_token, login, role)
    uri = await as_principal(platform, token, lambda s, p: s.enrol_totp(p))
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    await as_principal(
        platform, token, lambda s, p: s.confirm_totp(p, totp.code_at(secret, clock.now()))
    )
    return str(token)


async def consenting_subject(platform: Platform, org_id: str | None) -> str:
    """A subject id whose holder agreed, in ``org_id``, to the privacy notice in force (which is
    published first when the organisation has none): what the kiosk records before the clerk
    registers the person."""
    assert org_id is not None
    subject_id = new_subject_id()
    async with platform.db.transaction() as session:
        consent = ConsentService(platform, session)
        current = {n.kind: n for n in await consent.current_notices(org_id)}
        notice = current.get("privacy_policy") or await consent.publish(
            org_id, "account:dpo", privacy_policy()
        )
        await consent.record(
            org_id,
            "account:clerk",
            subject_id=subject_id,
            kind="privacy_policy",
            version=notice.version,
            purpose="identity_verification",
            action="given",
            channel="kiosk",
        )
    return subject_id
