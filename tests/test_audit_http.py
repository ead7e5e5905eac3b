"""The audit log over HTTP: auditors read their organisation's entries, check proofs offline."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from anju.audit import AuditLog
from anju.kit import merkle
from anju.kit.checkpoint import parse_body, split_note
from anju.kit.clock import FixedClock
from anju.kit.crypto import SM2PublicKey
from anju.platform import Platform
from tests.support.accounts import as_principal, login_token, make_admin, make_member
from tests.support.http import api_client, bearer


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(platform) as c:
        yield c


async def auditor_of(platform: Platform, clock: FixedClock, org: str, login: str) -> str:
    """An auditor account in organisation ``org`` (made by that org's security admin)."""
    admin = await make_admin(platform, f"sa-{login}", org)
    token = await login_token(platform, admin.login)
    account_id, _ = await make_member(platform, clock, admin, token, login)
    await as_principal(platform, token, lambda s, p: s.grant_role(p, account_id, "auditor"))
    return await login_token(platform, login)


@pytest.mark.req("L17", "F1", "L7")
async def test_auditor_reads_only_own_organisation_and_the_read_is_audited(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    auditor_a = await auditor_of(platform, clock, "Org A", "auditor-a")
    await auditor_of(platform, clock, "Org B", "auditor-b")

    response = await client.get("/api/v1/audit/entries?limit=500", headers=bearer(auditor_a))
    assert response.status_code == 200, response.text
    entries = response.json()["entries"]
    orgs = {e["org_id"] for e in entries}
    assert len(orgs) == 1  # org A only; org B's admin, logins and grants stay invisible
    assert "auditor-b" not in response.text
    assert [e["index"] for e in entries] == sorted((e["index"] for e in entries), reverse=True)

    again = await client.get("/api/v1/audit/entries?action=audit.", headers=bearer(auditor_a))
    reads = again.json()["entries"]
    assert reads
    assert reads[0]["action"] == "audit.entries.read"


@pytest.mark.req("L7", "R16")
async def test_security_admin_cannot_read_the_audit_log(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    admin = await make_admin(platform)
    token = await login_token(platform, admin.login)
    response = await client.get("/api/v1/audit/entries", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    anonymous = await client.get("/api/v1/audit/entries")
    assert anonymous.status_code == 401


@pytest.mark.req("L17", "V5")
async def test_checkpoint_and_inclusion_proof_verify_with_only_the_public_key(
    platform: Platform, clock: FixedClock, client: httpx.AsyncClient
) -> None:
    auditor = await auditor_of(platform, clock, "Org A", "auditor-a")
    public_pem = (await client.get("/api/v1/audit/public-key")).text
    public = SM2PublicKey.from_pem(public_pem)
    clock.advance(seconds=platform.settings.audit_checkpoint_seconds)
    async with platform.db.transaction() as session:  # what `anju serve` does every second
        assert await AuditLog(platform).checkpoint_if_due(session) is not None

    checkpoint = await client.get("/api/v1/audit/checkpoint", headers=bearer(auditor))
    assert checkpoint.status_code == 200, checkpoint.text
    body, signatures = split_note(checkpoint.text)
    assert public.verify(body, signatures[0].signature)  # SM2 over exactly the body bytes
    head = parse_body(body)

    proof = await client.get(
        f"/api/v1/audit/proofs/inclusion?index=0&size={head.size}", headers=bearer(auditor)
    )
    assert proof.status_code == 200, proof.text
    p = proof.json()
    merkle.verify_inclusion(
        0,
        head.size,
        base64.b64decode(p["leaf_hash"]),
        [base64.b64decode(h) for h in p["proof"]],
        head.root,
    )
    beyond = await client.get(
        f"/api/v1/audit/proofs/inclusion?index={head.size + 5}", headers=bearer(auditor)
    )
    assert beyond.status_code == 404
    wrong_type = await client.get(
        "/api/v1/audit/proofs/inclusion?index=first", headers=bearer(auditor)
    )
    assert wrong_type.status_code == 422

    verified = await client.post("/api/v1/audit/verify", headers=bearer(auditor))
    assert verified.status_code == 200
    assert verified.json()["ok"] is True
    assert verified.json()["first_problem"] is None
