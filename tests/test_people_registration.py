"""Registration: verification with the CTID-style provider over signed HTTP on loopback, staff
checks, duplicates by blind index, masked by default, signed results kept; bad input leaves
the database exactly as it was."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx
import pytest
from sqlalchemy import func, select

from anju.db import Base
from anju.errors import AnjuError
from anju.kit.clock import FixedClock
from anju.people.application import Application
from anju.people.models import IdentityVerification, Person
from anju.people.registration import Registrar
from anju.people.service import Actor, PeopleService
from anju.people.verification.base import (
    NetworkCheck,
    ProviderAnswerInvalid,
    ProviderUnavailable,
    StaffCheck,
)
from anju.people.verification.ctid import CtidProvider
from anju.people.verification.statement import VERIFICATION_SIGNER, statement_is_authentic
from anju.platform import Platform
from tests.support.people import credit_code_of, fake_ctid, people

DESK = Actor("account:desk-1", "org-1")
STAFF = StaffCheck(original_document_checked=True)
TABLES = ("people", "people_verifications", "privacy_subject_keys", "audit_entries")


async def register(platform: Platform, application: Application, evidence=STAFF, actor=DESK):  # type: ignore[no-untyped-def]
    async with platform.db.transaction() as session:
        return await Registrar(platform, session).register(actor, application, evidence)


async def row_counts(platform: Platform) -> dict[str, int]:
    async with platform.db.transaction() as session:
        return {
            t: int(
                (
                    await session.execute(select(func.count()).select_from(Base.metadata.tables[t]))
                ).scalar_one()
            )
            for t in TABLES
        }


@pytest.mark.req("N1", "N2", "N3", "L3")
async def test_ctid_verification_registers_the_person_sealed_and_masked(
    platform: Platform, clock: FixedClock
) -> None:
    guest = people(1)[0]
    with fake_ctid(clock) as ctid:
        ctid.knows(guest)
        result = await register(platform, guest, NetworkCheck(ctid.provider))
        assert ctid.service.requests == 1
    assert result.outcome == "registered"
    assert result.person_id
    async with platform.db.transaction() as session:
        person = await session.get(Person, result.person_id)
        assert person is not None
        view = await PeopleService(platform, session).find_by_document(
            "org-1", "resident_id", guest.document_number.lower()
        )
    assert view is not None
    assert view.id == result.person_id
    assert view.masked["document_number"] == (
        guest.document_number[:6] + "********" + guest.document_number[-4:]
    )
    assert view.masked["name"][0] == guest.name[0]
    assert guest.name not in json.dumps(view.masked)
    assert person.subject_id.startswith("psn_")
    assert person.name is not None
    assert guest.name.encode() not in person.name.blob


@pytest.mark.req("N2", "N3")
async def test_the_verification_result_is_signed_and_kept(
    platform: Platform, clock: FixedClock
) -> None:
    guest = people(2)[1]
    with fake_ctid(clock) as ctid:
        ctid.knows(guest)
        result = await register(platform, guest, NetworkCheck(ctid.provider))
    async with platform.db.transaction() as session:
        kept = await session.get(IdentityVerification, result.verification_id)
    assert kept is not None
    public = platform.keys.signer(VERIFICATION_SIGNER).public_key
    assert statement_is_authentic(public, kept.statement, kept.signature)
    statement = json.loads(kept.statement)
    assert statement["method"] == "ctid"
    assert statement["outcome"] == "verified"
    assert statement["checked_by"] == DESK.actor
    assert statement["person_id"] == result.person_id
    assert guest.document_number not in kept.statement
    assert guest.name not in kept.statement
    forged = kept.statement.replace('"verified"', '"rejected"')
    assert not statement_is_authentic(public, forged, kept.signature)


@pytest.mark.req("N2", "N3")
async def test_unknown_or_mismatched_identity_is_rejected_and_no_person_stored(
    platform: Platform, clock: FixedClock
) -> None:
    known, stranger = people(2)
    with fake_ctid(clock) as ctid:
        ctid.knows(known)
        wrong_name = dataclasses.replace(known, name="李四")
        mismatch = await register(platform, wrong_name, NetworkCheck(ctid.provider))
        unknown = await register(platform, stranger, NetworkCheck(ctid.provider))
    assert (mismatch.outcome, mismatch.reason) == ("rejected", "no_match")
    assert (unknown.outcome, unknown.reason) == ("rejected", "not_found")
    counts = await row_counts(platform)
    assert counts["people"] == 0
    assert counts["people_verifications"] == 2


class TamperingProxy(httpx.AsyncBaseTransport):
    """A man in the middle turning the service's "not_found" into "match"."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        body = (await response.aread()).replace(b'"not_found"', b'"match"')
        headers = {k: v for k, v in response.headers.items() if k != "content-length"}
        return httpx.Response(response.status_code, headers=headers, content=body)


@pytest.mark.req("N2", "R10")
async def test_a_forged_or_unreachable_provider_is_an_error_not_a_verification(
    platform: Platform, clock: FixedClock
) -> None:
    stranger = people(1)[0]
    with fake_ctid(clock) as ctid:
        config = ctid.service.config()
        tampered = CtidProvider(config, clock, transport=TamperingProxy())
        with pytest.raises(ProviderAnswerInvalid):
            await register(platform, stranger, NetworkCheck(tampered))
        wrong_secret = dataclasses.replace(config, app_secret=b"x" * 32)
        with pytest.raises(ProviderUnavailable):  # the service refuses a caller it cannot trust
            await register(platform, stranger, NetworkCheck(CtidProvider(wrong_secret, clock)))
    with pytest.raises(ProviderUnavailable):  # the service is gone
        await register(platform, stranger, NetworkCheck(CtidProvider(config, clock)))
    counts = await row_counts(platform)
    assert counts["people"] == 0
    assert counts["people_verifications"] == 0


@pytest.mark.req("N1", "N3", "R10")
async def test_duplicate_document_is_refused_with_the_existing_person(
    platform: Platform,
) -> None:
    guest = people(1)[0]
    first = await register(platform, guest)
    before = await row_counts(platform)
    spaced = dataclasses.replace(
        guest, document_number=" ".join(guest.document_number), name="别人"
    )
    with pytest.raises(AnjuError) as raised:
        await register(platform, spaced)
    assert raised.value.code == "duplicate_person"
    assert raised.value.details == {"person_id": first.person_id}
    assert await row_counts(platform) == before
    # Another organisation keeps its own register.
    other = await register(platform, guest, actor=Actor("account:desk-2", "org-2"))
    assert other.outcome == "registered"
    assert other.person_id != first.person_id


@pytest.mark.req("N3")
async def test_staff_offline_registration_records_who_checked_the_original(
    platform: Platform,
) -> None:
    guest = people(1)[0]
    with pytest.raises(AnjuError) as raised:
        await register(platform, guest, StaffCheck(original_document_checked=False))
    assert raised.value.code == "original_document_not_checked"
    result = await register(platform, guest)
    async with platform.db.transaction() as session:
        kept = await session.get(IdentityVerification, result.verification_id)
    assert kept is not None
    assert kept.method == "staff_offline"
    assert json.loads(kept.statement)["checked_by"] == "account:desk-1"


@pytest.mark.req("N1", "N3")
async def test_organisations_register_with_credit_code_and_legal_representative(
    platform: Platform,
) -> None:
    org = Application(
        kind="organisation",
        document_type="credit_code",
        document_number=credit_code_of("91110105MA0123456"),
        name="北京安居科技有限公司",
        legal_representative="欧阳娜娜",
        phone="13800138000",
    )
    result = await register(platform, org)
    async with platform.db.transaction() as session:
        view = await PeopleService(platform, session).find_by_document(
            "org-1", "credit_code", org.document_number
        )
    assert view is not None
    assert view.kind == "organisation"
    assert view.masked["legal_representative"] == "欧***"
    assert result.person_id == view.id


BAD_INPUT = [
    ({"document_number": "110105194912310021"}, "invalid_check_character"),
    ({"document_number": "110105199902300011"}, "implausible_birth_date"),
    ({"document_type": "library_card"}, "unsupported_document_type"),
    ({"name": "x'); DROP TABLE people; --"}, "invalid_name"),
    ({"name": "张" * 1000}, "field_too_long"),
    ({"address": "北" * 5000}, "field_too_long"),
    ({"phone": "+86 1" + "3" * 40}, "field_too_long"),
    ({"name": "\u202e张三"}, "invalid_name"),  # right-to-left override
    ({"name": "\ud800"}, "invalid_name"),  # lone surrogate
    ({"kind": "robot"}, "invalid_person_kind"),
]


@pytest.mark.req("N1", "R10")
@pytest.mark.parametrize(("change", "code"), BAD_INPUT)
async def test_bad_input_has_a_stable_code_and_writes_nothing(
    platform: Platform, change: dict[str, str], code: str
) -> None:
    await register(platform, people(2)[0])
    before = await row_counts(platform)
    with pytest.raises(AnjuError) as raised:
        await register(platform, dataclasses.replace(people(2)[1], **change))
    assert raised.value.code == code
    assert await row_counts(platform) == before


@pytest.mark.req("N1", "R10")
@pytest.mark.parametrize("org_id", ["org-1", None])
async def test_concurrent_registrations_of_one_document_store_one_person(
    platform: Platform, org_id: str | None
) -> None:
    guest = people(1)[0]
    actor = Actor("account:desk-1", org_id)
    outcomes = await asyncio.gather(
        *(register(platform, guest, actor=actor) for _ in range(3)), return_exceptions=True
    )
    registered = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, AnjuError)]
    assert (len(registered), len(refused)) == (1, 2), outcomes
    assert {e.code for e in refused} == {"duplicate_person"}
    assert {e.details["person_id"] for e in refused} == {registered[0].person_id}
    counts = await row_counts(platform)
    assert counts["people"] == 1
    assert counts["people_verifications"] == 1


@pytest.mark.req("N3", "L4")
async def test_the_consent_hook_runs_before_anything_is_written(platform: Platform) -> None:
    seen: list[tuple[str | None, str | None, str]] = []

    async def refuse_without_receipt(
        session: object, org: str | None, receipt: str | None, subject: str
    ) -> None:
        seen.append((org, receipt, subject))
        if receipt is None:
            raise AnjuError("需要同意 / consent needed")

    before = await row_counts(platform)
    guest = people(1)[0]
    async with platform.db.transaction() as session:
        registrar = Registrar(platform, session, consent_check=refuse_without_receipt)
        with pytest.raises(AnjuError):
            await registrar.register(DESK, guest, STAFF)
    assert await row_counts(platform) == before
    async with platform.db.transaction() as session:
        registrar = Registrar(platform, session, consent_check=refuse_without_receipt)
        result = await registrar.register(DESK, guest, STAFF, consent_receipt_id="rcpt-1")
        kept = await session.get(IdentityVerification, result.verification_id)
    assert kept is not None
    assert kept.consent_receipt_id == "rcpt-1"
    assert json.loads(kept.statement)["consent_receipt_id"] == "rcpt-1"
    assert seen[-1] == ("org-1", "rcpt-1", result.subject_id)
