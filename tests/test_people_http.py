"""People over HTTP, by role: the front desk registers and sees masked data, the data operator
decrypts only with a stated purpose (audited), the auditor sees the access trail, the security
administrator sees nothing; the person uses an access link to export, correct and delete."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from anju.app import create_app
from anju.errors import InvalidInput
from anju.kit.clock import FixedClock
from anju.kit.crypto import SM2PublicKey
from anju.people.application import Application
from anju.people.verification.statement import canonical, statement_is_authentic
from anju.platform import Platform
from tests.support.accounts import login_token, make_admin, make_member_with_role
from tests.support.http import api_client, bearer, code_of
from tests.support.people import consenting_subject, fake_ctid, member_with_second_factor, people


@contextlib.asynccontextmanager
async def client_with_provider(
    platform: Platform, provider: Any, consent_check: Any = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(platform)
    app.state.identity_provider = provider
    app.state.consent_check = consent_check
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://anju.test") as client:
        yield client


def body_of(guest: Application, method: str = "ctid") -> dict[str, Any]:
    return {
        "document_type": guest.document_type,
        "document_number": guest.document_number,
        "name": guest.name,
        "phone": guest.phone,
        "email": guest.email,
        "address": guest.address,
        "method": method,
        "consent_receipt_id": "receipt-123",
    }


@pytest.mark.req("L7", "L11", "N1", "N2")
async def test_roles_register_masked_decrypt_with_purpose_trail_and_admin_sees_nothing(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform)
    admin_token = await login_token(platform, admin.login)
    desk = bearer(
        await make_member_with_role(platform, clock, admin, admin_token, "desk", "front_desk")
    )
    auditor = bearer(
        await make_member_with_role(platform, clock, admin, admin_token, "aud", "auditor")
    )
    operator = bearer(
        await member_with_second_factor(platform, clock, admin, "dataop", "data_operator")
    )
    guest = people(1)[0]
    with fake_ctid(clock) as ctid:
        ctid.knows(guest)
        async with client_with_provider(platform, ctid.provider) as client:
            r = await client.post("/api/v1/people", json=body_of(guest), headers=desk)
            assert r.status_code == 201, r.text
            person_id = r.json()["person_id"]
            assert guest.name not in r.text
            assert guest.document_number not in r.text

            lookup = {"document_type": "resident_id", "document_number": guest.document_number}
            r = await client.post("/api/v1/people/lookup", json=lookup, headers=desk)
            assert [p["id"] for p in r.json()["people"]] == [person_id]
            by_phone = {"phone": "+86 " + str(guest.phone)}
            r = await client.post("/api/v1/people/lookup", json=by_phone, headers=desk)
            assert [p["id"] for p in r.json()["people"]] == [person_id]
            missing = {**lookup, "document_number": people(3)[2].document_number}
            r = await client.post("/api/v1/people/lookup", json=missing, headers=desk)
            assert (r.status_code, r.json()["people"]) == (200, [])
            r = await client.post(
                "/api/v1/people/lookup", json={**lookup, **by_phone}, headers=desk
            )
            assert (r.status_code, code_of(r)) == (422, "invalid_input")
            r = await client.get(f"/api/v1/people/{person_id}", headers=desk)
            assert r.status_code == 200
            assert r.json()["masked"]["phone"] == guest.phone[:3] + "****" + guest.phone[-4:]
            for value in (guest.name, guest.document_number, guest.phone, guest.address):
                assert value not in r.text

            # Front desk may not decrypt; the refusal is audited.
            reveal = {"fields": ["name", "document_number"], "purpose": "regulator_report"}
            r = await client.post(f"/api/v1/people/{person_id}/reveal", json=reveal, headers=desk)
            assert (r.status_code, code_of(r)) == (403, "forbidden")

            # The data operator decrypts, for a purpose the fields allow.
            r = await client.post(
                f"/api/v1/people/{person_id}/reveal",
                json={"fields": ["phone"], "purpose": "regulator_report"},
                headers=operator,
            )
            assert (r.status_code, code_of(r)) == (403, "forbidden")  # phone: not for reports
            r = await client.post(
                f"/api/v1/people/{person_id}/reveal", json=reveal, headers=operator
            )
            assert r.status_code == 200, r.text
            assert r.json() == {"name": guest.name, "document_number": guest.document_number}
            r = await client.post(
                f"/api/v1/people/{person_id}/reveal",
                json={"fields": ["name"], "purpose": "curiosity"},
                headers=operator,
            )
            assert (r.status_code, code_of(r)) == (422, "invalid_input")

            # The security administrator holds no PI capability at all.
            admin_headers = bearer(admin_token)
            for call in (
                client.get(f"/api/v1/people/{person_id}", headers=admin_headers),
                client.post(
                    f"/api/v1/people/{person_id}/reveal", json=reveal, headers=admin_headers
                ),
                client.get(f"/api/v1/people/{person_id}/access-trail", headers=admin_headers),
                client.post("/api/v1/people", json=body_of(guest), headers=admin_headers),
            ):
                assert (await call).status_code == 403

            # The auditor sees who decrypted what, and why; the desk cannot read the trail.
            r = await client.get(f"/api/v1/people/{person_id}/access-trail", headers=desk)
            assert r.status_code == 403
            r = await client.get(f"/api/v1/people/{person_id}/access-trail", headers=auditor)
            assert r.status_code == 200
            decrypted = [e for e in r.json()["entries"] if e["action"] == "pi.decrypted"]
            assert {(e["field"], e["purpose"]) for e in decrypted} == {
                ("person.name", "regulator_report"),
                ("person.document_number", "regulator_report"),
            }
            assert {e["actor"] for e in decrypted} == {decrypted[0]["actor"]}
            assert decrypted[0]["actor"].startswith("account:")
            assert guest.name not in r.text


@pytest.mark.req("N4", "L11", "L12")
async def test_the_person_exports_corrects_and_deletes_through_an_access_link(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform)
    admin_token = await login_token(platform, admin.login)
    desk = bearer(
        await make_member_with_role(platform, clock, admin, admin_token, "desk", "front_desk")
    )
    guest = people(2)[1]
    async with client_with_provider(platform, None) as client:
        r = await client.post(
            "/api/v1/people",
            json={**body_of(guest, "staff_offline"), "original_document_checked": True},
            headers=desk,
        )
        assert r.status_code == 201, r.text
        person_id = r.json()["person_id"]
        r = await client.post(f"/api/v1/people/{person_id}/access-links", headers=desk)
        assert r.status_code == 201
        link = bearer(r.json()["token"])

        r = await client.get("/api/v1/people/self", headers=link)
        assert r.status_code == 200, r.text
        export = r.json()
        assert export["data"]["name"] == guest.name
        assert export["data"]["document_number"] == guest.document_number
        assert export["verifications"][0]["statement"]["checked_by"].startswith("account:")
        assert export["verifications"][0]["statement"]["consent_receipt_id"] == "receipt-123"
        # The person can check the signed statement on their own with the key in the export.
        kept = export["verifications"][0]
        public = SM2PublicKey.from_pem(export["verification_public_key"])
        assert statement_is_authentic(
            public, canonical(kept["statement"]), base64.b64decode(kept["signature"])
        )
        assert any(e["action"] == "people.registered" for e in export["access_trail"])

        r = await client.patch(
            "/api/v1/people/self", json={"phone": "13700001111", "email": ""}, headers=link
        )
        assert r.status_code == 200, r.text
        assert r.json()["masked"]["phone"] == "137****1111"
        assert "email" not in r.json()["masked"]
        r = await client.patch("/api/v1/people/self", json={"phone": "12"}, headers=link)
        assert (r.status_code, code_of(r)) == (422, "invalid_contact")

        r = await client.get("/api/v1/people/self/access-trail", headers=link)
        actions = [e["action"] for e in r.json()["entries"]]
        assert "people.corrected" in actions
        assert "people.exported" in actions
        subject_reads = [e for e in r.json()["entries"] if e["action"] == "pi.decrypted"]
        assert {e["purpose"] for e in subject_reads} == {"subject_access"}

        r = await client.post("/api/v1/people/self/deletion", headers=link)
        assert r.status_code == 204
        r = await client.get("/api/v1/people/self", headers=link)
        assert (r.status_code, code_of(r)) == (401, "unauthenticated")  # the link died too
        r = await client.get(f"/api/v1/people/{person_id}", headers=desk)
        assert r.json()["status"] == "deleted"
        assert r.json()["masked"] == {}
        # The same document can be registered again: nothing of the old record matches it.
        r = await client.post(
            "/api/v1/people",
            json={**body_of(guest, "staff_offline"), "original_document_checked": True},
            headers=desk,
        )
        assert r.status_code == 201
        assert r.json()["person_id"] != person_id

        r = await client.get("/api/v1/people/self", headers=bearer("anjup_" + "A" * 43))
        assert (r.status_code, code_of(r)) == (401, "unauthenticated")


@pytest.mark.req("L11", "L7")
async def test_access_links_expire(platform: Platform, clock: FixedClock) -> None:
    admin = await make_admin(platform)
    admin_token = await login_token(platform, admin.login)
    desk = bearer(
        await make_member_with_role(platform, clock, admin, admin_token, "desk", "front_desk")
    )
    guest = people(1)[0]
    async with client_with_provider(platform, None) as client:
        r = await client.post(
            "/api/v1/people",
            json={**body_of(guest, "staff_offline"), "original_document_checked": True},
            headers=desk,
        )
        person_id = r.json()["person_id"]
        link = bearer(
            (await client.post(f"/api/v1/people/{person_id}/access-links", headers=desk)).json()[
                "token"
            ]
        )
        assert (
            await client.get("/api/v1/people/self/access-trail", headers=link)
        ).status_code == 200
        clock.advance(seconds=31 * 60)
        r = await client.get("/api/v1/people/self", headers=link)
        assert (r.status_code, code_of(r)) == (401, "unauthenticated")

        # A ctid registration without a configured provider is a clear error.
        r = await client.post("/api/v1/people", json=body_of(people(2)[1]), headers=desk)
        assert (r.status_code, code_of(r)) == (503, "verification_provider_unavailable")
        assert json.loads(r.text)["error"]["message"]


@pytest.mark.req("N2", "N3", "L4")
async def test_the_served_app_takes_its_ctid_provider_from_settings(
    platform: Platform, clock: FixedClock, tmp_path: Any
) -> None:
    admin = await make_admin(platform)
    admin_token = await login_token(platform, admin.login)
    desk = bearer(
        await make_member_with_role(platform, clock, admin, admin_token, "desk", "front_desk")
    )
    guest = people(1)[0]
    with fake_ctid(clock) as ctid:
        ctid.knows(guest)
        config = tmp_path / "ctid.json"
        config.write_text(
            json.dumps(
                {
                    "base_url": ctid.service.url,
                    "app_id": ctid.service.app_id,
                    "app_secret_hex": ctid.service.app_secret.hex(),
                    "service_public_key_pem": ctid.service.key.public_key.to_pem(),
                }
            )
        )
        configured = dataclasses.replace(
            platform, settings=platform.settings.model_copy(update={"ctid_config": config})
        )
        async with api_client(configured) as client:
            # The served app refuses a registration without the person's consent (N3)…
            r = await client.post("/api/v1/people", json=body_of(guest), headers=desk)
            assert (r.status_code, code_of(r)) == (403, "consent_required")
            assert ctid.service.requests == 0
            # …and registers once it is recorded under the subject id they applied with.
            subject_id = await consenting_subject(platform, admin.org_id)
            body = {**body_of(guest), "subject_id": subject_id}
            r = await client.post("/api/v1/people", json=body, headers=desk)
        assert r.status_code == 201, r.text
        assert r.json()["subject_id"] == subject_id
        assert ctid.service.requests == 1


@pytest.mark.req("L7", "L11")
async def test_another_organisation_sees_nothing_of_a_person(
    platform: Platform, clock: FixedClock
) -> None:
    admin_a = await make_admin(platform, login="sa-a", org="Hotel A")
    admin_b = await make_admin(platform, login="sa-b", org="Hotel B")
    token_a = await login_token(platform, admin_a.login)
    token_b = await login_token(platform, admin_b.login)
    desk_a = bearer(
        await make_member_with_role(platform, clock, admin_a, token_a, "da", "front_desk")
    )
    desk_b = bearer(
        await make_member_with_role(platform, clock, admin_b, token_b, "db", "front_desk")
    )
    auditor_b = bearer(
        await make_member_with_role(platform, clock, admin_b, token_b, "ab", "auditor")
    )
    guest = people(1)[0]
    async with client_with_provider(platform, None) as client:
        r = await client.post(
            "/api/v1/people",
            json={**body_of(guest, "staff_offline"), "original_document_checked": True},
            headers=desk_a,
        )
        person_id = r.json()["person_id"]
        for call in (
            client.get(f"/api/v1/people/{person_id}", headers=desk_b),
            client.post(f"/api/v1/people/{person_id}/access-links", headers=desk_b),
            client.get(f"/api/v1/people/{person_id}/access-trail", headers=auditor_b),
        ):
            r = await call
            assert (r.status_code, code_of(r)) == (404, "not_found")
        for lookup in (
            {"document_type": "resident_id", "document_number": guest.document_number},
            {"phone": guest.phone},
        ):
            r = await client.post("/api/v1/people/lookup", json=lookup, headers=desk_b)
            assert (r.status_code, r.json()["people"]) == (200, [])
            r = await client.post("/api/v1/people/lookup", json=lookup, headers=desk_a)
            assert [p["id"] for p in r.json()["people"]] == [person_id]


@pytest.mark.req("N3", "L4")
async def test_the_consent_domains_check_runs_on_http_registrations(
    platform: Platform, clock: FixedClock
) -> None:
    async def no_receipt_no_registration(
        session: Any, org: Any, receipt: Any, subject: str
    ) -> None:
        if receipt is None:
            raise InvalidInput("需要同意回执 / a consent receipt is needed")

    admin = await make_admin(platform)
    admin_token = await login_token(platform, admin.login)
    desk = bearer(
        await make_member_with_role(platform, clock, admin, admin_token, "desk", "front_desk")
    )
    guest = {**body_of(people(1)[0], "staff_offline"), "original_document_checked": True}
    async with client_with_provider(platform, None, no_receipt_no_registration) as client:
        r = await client.post(
            "/api/v1/people", json={**guest, "consent_receipt_id": None}, headers=desk
        )
        assert (r.status_code, code_of(r)) == (422, "invalid_input")
        r = await client.post("/api/v1/people", json=guest, headers=desk)
        assert r.status_code == 201, r.text
