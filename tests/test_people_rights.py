"""Deletion is crypto-shredding: after it, the person's values cannot be read even with the
whole database and the keyring; the tombstone and the audit log say what was removed, when and
why. Operators delete only with a recent second factor."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from anju.audit.models import AuditEntry
from anju.errors import KeyUnavailable
from anju.kit.clock import FixedClock
from anju.people.models import Person
from anju.people.registration import Registrar
from anju.people.rights import SubjectRights
from anju.people.service import Actor, PeopleService, PersonDeleted
from anju.people.verification.base import StaffCheck
from anju.platform import Platform
from anju.privacy.column import Sealed
from anju.privacy.vault import PIVault
from tests.support.accounts import login_token, make_admin, make_member_with_role
from tests.support.http import api_client, bearer, code_of
from tests.support.people import consenting_subject, member_with_second_factor, people

DESK = Actor("account:desk-1", "org-1")
OPERATOR = Actor("account:op-1", "org-1")


@pytest.mark.req("L10", "L12", "L3")
async def test_deleted_person_cannot_be_read_even_with_database_and_keys(
    platform: Platform,
) -> None:
    guest = people(1)[0]
    async with platform.db.transaction() as session:
        result = await Registrar(platform, session).register(
            DESK, guest, StaffCheck(original_document_checked=True)
        )
        assert result.person_id is not None
        person = await session.get(Person, result.person_id)
        assert person is not None
        assert person.name is not None
        sealed_name: Sealed = person.name  # a copy someone took of the ciphertext beforehand
    async with platform.db.transaction() as session:
        service = PeopleService(platform, session)
        person = await service.person(result.person_id, "org-1")
        await service.delete(OPERATOR, person, "operator_request")
    async with platform.db.transaction() as session:
        with pytest.raises(KeyUnavailable):
            await PIVault(platform).open(
                session, "person.name", result.subject_id, result.person_id, sealed_name,
                purpose="subject_access", actor="auditor-test",
            )  # fmt: skip
        tomb = await session.get(Person, result.person_id)
        assert tomb is not None
        assert tomb.status == "deleted"
        assert tomb.deleted_at is not None
        assert (tomb.name, tomb.document_number, tomb.phone, tomb.document_index) == (
            None, None, None, None,
        )  # fmt: skip
        entries = (
            (
                await session.execute(
                    select(AuditEntry).where(AuditEntry.target == f"subject:{result.subject_id}")
                )
            )
            .scalars()
            .all()
        )
        actions = [(e.action, e.actor) for e in entries]
        assert ("pi.subject_shredded", OPERATOR.actor) in actions
        deleted = next(e for e in entries if e.action == "people.deleted")
        assert '"reason":"operator_request"' in deleted.details
        with pytest.raises(PersonDeleted):
            await PeopleService(platform, session).delete(OPERATOR, tomb, "operator_request")
        with pytest.raises(PersonDeleted):
            await SubjectRights(platform, session).issue_link(DESK, result.person_id)


@pytest.mark.req("L7", "L11")
async def test_operator_deletion_and_reveal_need_a_recent_second_factor(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform)
    admin_token = await login_token(platform, admin.login)
    operator = bearer(
        await member_with_second_factor(platform, clock, admin, "dataop", "data_operator")
    )
    desk = bearer(
        await make_member_with_role(platform, clock, admin, admin_token, "desk", "front_desk")
    )
    guest = people(1)[0]
    async with api_client(platform) as client:
        r = await client.post(
            "/api/v1/people",
            json={
                "document_type": guest.document_type,
                "document_number": guest.document_number,
                "name": guest.name,
                "method": "staff_offline",
                "original_document_checked": True,
                "subject_id": await consenting_subject(platform, admin.org_id),
            },
            headers=desk,
        )
        person_id = r.json()["person_id"]
        r = await client.request(
            "DELETE", f"/api/v1/people/{person_id}", json={"reason": "operator_request"},
            headers=desk,
        )  # fmt: skip
        assert (r.status_code, code_of(r)) == (403, "forbidden")
        clock.advance(seconds=platform.settings.second_factor_window_seconds + 1)
        r = await client.request(
            "DELETE", f"/api/v1/people/{person_id}", json={"reason": "operator_request"},
            headers=operator,
        )  # fmt: skip
        assert (r.status_code, code_of(r)) == (403, "second_factor_required")
        r = await client.post(
            f"/api/v1/people/{person_id}/reveal",
            json={"fields": ["name"], "purpose": "identity_verification"},
            headers=operator,
        )
        assert (r.status_code, code_of(r)) == (403, "second_factor_required")
        assert (await client.get(f"/api/v1/people/{person_id}", headers=desk)).json()[
            "status"
        ] == "active"
