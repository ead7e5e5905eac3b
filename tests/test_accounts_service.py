"""Accounts: sign-in, lockout, second factor, separation of duties, sessions, API keys."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, text

from anju.accounts import totp
from anju.accounts.models import Account
from anju.accounts.passwords import Argon2Params, Passwords
from anju.accounts.principal import PasswordChangeRequired
from anju.accounts.roles import ROLES, Cap, Role
from anju.accounts.service import (
    AccountService,
)
from anju.audit.models import AuditEntry
from anju.errors import (
    AccountLocked,
    AnjuError,
    Forbidden,
    NotFound,
    SecondFactorRequired,
    Unauthenticated,
    WeakPassword,
)
from anju.kit.clock import FixedClock
from anju.platform import Platform
from tests.support.accounts import (
    PASSWORD,
    as_principal,
    login_token,
    make_admin,
    make_member,
    step_up,
)

NEW_PASSWORD = "Battery.Staple-77"


async def audit_rows(platform: Platform) -> list[AuditEntry]:
    async with platform.db.transaction() as s:
        return list((await s.scalars(select(AuditEntry).order_by(AuditEntry.leaf_index))).all())


# --- sign-in and lockout ---------------------------------------------------------------------
@pytest.mark.req("F1", "R17")
async def test_correct_login_opens_a_session_with_the_accounts_capabilities(
    platform: Platform,
) -> None:
    admin = await make_admin(platform)
    token = await login_token(platform, "SA-One")  # login names compare case-insensitively
    principal = await as_principal(platform, token, lambda s, p: _return(p))
    assert principal.id == admin.id
    assert principal.org_id == admin.org_id
    assert principal.roles == {Role.SECURITY_ADMIN}
    assert Cap.ROLES_GRANT in principal.capabilities
    assert principal.second_factor_at is None  # password alone is not a second factor


async def _return(value):  # type: ignore[no-untyped-def]
    return value


@pytest.mark.req("F1")
async def test_wrong_password_is_refused(platform: Platform) -> None:
    await make_admin(platform)
    with pytest.raises(Unauthenticated):
        await login_token(platform, "sa-one", "Wrong-Password-1")


@pytest.mark.req("F1")
async def test_lockout_after_max_failures_then_released_after_the_window(
    platform: Platform, clock: FixedClock
) -> None:
    await make_admin(platform)
    limit = platform.settings.login_max_failures
    for _ in range(limit - 1):
        with pytest.raises(Unauthenticated):
            await login_token(platform, "sa-one", "Wrong-Password-1")
    with pytest.raises(Unauthenticated):  # the N-th failure locks
        await login_token(platform, "sa-one", "Wrong-Password-1")
    with pytest.raises(AccountLocked) as locked:  # now even the right password is refused
        await login_token(platform, "sa-one")
    assert locked.value.status == 423
    assert (
        0 < locked.value.details["retry_after_seconds"] <= platform.settings.login_lockout_seconds
    )
    clock.advance(seconds=platform.settings.login_lockout_seconds - 1)
    with pytest.raises(AccountLocked):
        await login_token(platform, "sa-one")
    clock.advance(seconds=2)
    assert await login_token(platform, "sa-one")


@pytest.mark.req("F1")
async def test_success_resets_the_failure_counter(platform: Platform) -> None:
    await make_admin(platform)
    limit = platform.settings.login_max_failures
    for _ in range(limit - 1):
        with pytest.raises(Unauthenticated):
            await login_token(platform, "sa-one", "Wrong-Password-1")
    await login_token(platform, "sa-one")
    for _ in range(limit - 1):
        with pytest.raises(Unauthenticated):
            await login_token(platform, "sa-one", "Wrong-Password-1")
    assert await login_token(platform, "sa-one")


@pytest.mark.req("F1")
async def test_unknown_login_is_indistinguishable_from_a_wrong_password(
    platform: Platform,
) -> None:
    await make_admin(platform)

    async def failure(login: str) -> tuple[AnjuError, float]:
        started = time.perf_counter()
        with pytest.raises(AnjuError) as caught:
            await login_token(platform, login, "Wrong-Password-1")
        return caught.value, time.perf_counter() - started

    known = [await failure("sa-one") for _ in range(3)]
    unknown = [await failure("nobody-here") for _ in range(3)]
    for (err_known, _), (err_unknown, _) in zip(known, unknown, strict=True):
        assert type(err_known) is type(err_unknown)
        assert (err_known.status, err_known.code, err_known.message, err_known.details) == (
            err_unknown.status,
            err_unknown.code,
            err_unknown.message,
            err_unknown.details,
        )
    fastest_known = min(t for _, t in known)
    fastest_unknown = min(t for _, t in unknown)
    # Both run one argon2id verification (~0.1 s); without the dummy hash the unknown path
    # would take a few milliseconds.
    assert 0.5 < fastest_unknown / fastest_known < 2.0


# --- passwords -------------------------------------------------------------------------------
@pytest.mark.req("R17", "F1")
async def test_weak_passwords_are_refused_with_reasons(platform: Platform) -> None:
    cases = {
        "Short-1a": "too_short",
        "alllowercaseletters": "too_few_character_classes",
        "Password@123": "too_common",
        "My-sa-one-Secret9": "contains_login",
    }
    for password, reason in cases.items():
        with pytest.raises(WeakPassword) as weak:
            async with platform.db.transaction() as s:
                await AccountService(platform, s).bootstrap_security_admin(
                    login="sa-one", password=password, org_name=None
                )
        codes = [r["code"] for r in weak.value.details["reasons"]]
        assert reason in codes, (password, codes)
        assert weak.value.code == "weak_password"
        assert weak.value.status == 422
        assert all("/" in r["message"] for r in weak.value.details["reasons"])  # zh / en
    async with platform.db.transaction() as s:
        assert (await s.scalars(select(Account))).first() is None


@pytest.mark.req("R17")
async def test_password_change_needs_the_current_password_and_ends_other_sessions(
    platform: Platform,
) -> None:
    await make_admin(platform)
    first = await login_token(platform, "sa-one")
    second = await login_token(platform, "sa-one")
    with pytest.raises(Forbidden):
        await as_principal(
            platform, first, lambda s, p: s.change_password(p, "Not-The-Current-1", NEW_PASSWORD)
        )
    with pytest.raises(WeakPassword):
        await as_principal(
            platform, first, lambda s, p: s.change_password(p, PASSWORD, "weakweakweakweak")
        )
    await as_principal(platform, first, lambda s, p: s.change_password(p, PASSWORD, NEW_PASSWORD))
    with pytest.raises(Unauthenticated):
        await as_principal(platform, second, lambda s, p: _return(p))
    assert await as_principal(platform, first, lambda s, p: _return(p))
    with pytest.raises(Unauthenticated):
        await login_token(platform, "sa-one", PASSWORD)
    assert await login_token(platform, "sa-one", NEW_PASSWORD)


@pytest.mark.req("R17")
async def test_reset_gives_a_one_time_password_that_must_be_changed(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform)
    token = await login_token(platform, "sa-one")
    member_id, member_token = await make_member(platform, clock, admin, token, "clerk")
    await step_up(platform, clock, admin, token)
    temp = await as_principal(platform, token, lambda s, p: s.reset_password(p, member_id))
    with pytest.raises(Unauthenticated):  # the reset ended the member's sessions
        await as_principal(platform, member_token, lambda s, p: _return(p))
    with pytest.raises(Unauthenticated):  # the old password no longer works
        await login_token(platform, "clerk", PASSWORD)
    temp_token = await login_token(platform, "clerk", temp)
    with pytest.raises(PasswordChangeRequired):  # nothing else until it is changed
        await as_principal(platform, temp_token, lambda s, p: s.list_accounts(p))
    await as_principal(
        platform,
        temp_token,
        lambda s, p: s.change_password(p, temp, NEW_PASSWORD),
        allow_password_change=True,
    )
    assert await as_principal(platform, temp_token, lambda s, p: _return(p))
    with pytest.raises(Unauthenticated):  # one-time: the temporary password is gone
        await login_token(platform, "clerk", temp)


@pytest.mark.req("R17")
async def test_stored_hash_is_upgraded_when_parameters_change(platform: Platform) -> None:
    weak = Passwords(Argon2Params(time_cost=1, memory_kib=8 * 1024))
    async with platform.db.transaction() as s:
        await AccountService(platform, s, weak).bootstrap_security_admin(
            login="sa-one", password=PASSWORD, org_name=None
        )
    await login_token(platform, "sa-one")  # the default (stronger) parameters
    async with platform.db.transaction() as s:
        stored = (await s.scalars(select(Account.password_hash))).one()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=1$")
    assert await login_token(platform, "sa-one")


# --- separation of duties --------------------------------------------------------------------
@pytest.mark.req("L7", "R16")
async def test_nobody_grants_or_revokes_roles_for_themselves(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform)
    token = await login_token(platform, "sa-one")
    await step_up(platform, clock, admin, token)
    with pytest.raises(Forbidden):
        await as_principal(platform, token, lambda s, p: s.grant_role(p, admin.id, "front_desk"))
    with pytest.raises(Forbidden):
        await as_principal(
            platform, token, lambda s, p: s.revoke_role(p, admin.id, "security_admin")
        )
    denied = [r for r in await audit_rows(platform) if r.outcome == "denied"]
    assert [r.action for r in denied] == ["accounts.role.granted", "accounts.role.revoked"]


@pytest.mark.req("L7", "R16")
async def test_security_admin_never_reads_pi_and_duties_stay_apart(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform)
    token = await login_token(platform, "sa-one")
    other_admin, _ = await make_member(platform, clock, admin, token, "sa-two")
    operator, _ = await make_member(platform, clock, admin, token, "operator")
    auditor, _ = await make_member(platform, clock, admin, token, "auditor")
    await step_up(platform, clock, admin, token)

    async def grant(account_id: str, role: str) -> list[str]:
        return await as_principal(platform, token, lambda s, p: s.grant_role(p, account_id, role))  # type: ignore[no-any-return]

    assert await grant(other_admin, "security_admin") == ["security_admin"]
    assert await grant(operator, "data_operator") == ["data_operator"]
    assert await grant(auditor, "auditor") == ["auditor"]
    refused = [
        (other_admin, "data_operator"),
        (other_admin, "auditor"),
        (other_admin, "front_desk"),  # masked PI is still PI
        (other_admin, "officer"),
        (operator, "security_admin"),
        (operator, "auditor"),
        (auditor, "security_admin"),
        (auditor, "data_operator"),
    ]
    for account_id, role in refused:
        with pytest.raises(Forbidden):
            await grant(account_id, role)
    other = await login_token(platform, "sa-two")
    principal = await as_principal(platform, other, lambda s, p: _return(p))
    assert not {Cap.PI_READ, Cap.PI_READ_MASKED, Cap.AUDIT_READ} & principal.capabilities


@pytest.mark.req("L7")
async def test_only_security_admins_grant_roles(platform: Platform, clock: FixedClock) -> None:
    admin = await make_admin(platform)
    token = await login_token(platform, "sa-one")
    operator, operator_token = await make_member(platform, clock, admin, token, "operator")
    clerk, _ = await make_member(platform, clock, admin, token, "clerk")
    await step_up(platform, clock, admin, token)
    await as_principal(platform, token, lambda s, p: s.grant_role(p, operator, "data_operator"))
    with pytest.raises(Forbidden) as refused:
        await as_principal(
            platform, operator_token, lambda s, p: s.grant_role(p, clerk, "front_desk")
        )
    assert refused.value.details == {"capability": "roles.grant"}


@pytest.mark.req("L7", "R16")
async def test_other_organisations_accounts_are_not_found(
    platform: Platform, clock: FixedClock
) -> None:
    admin_a = await make_admin(platform, "sa-a", "Org A")
    admin_b = await make_admin(platform, "sa-b", "Org B")
    token_a = await login_token(platform, "sa-a")
    member_b, _ = await make_member(
        platform, clock, admin_b, await login_token(platform, "sa-b"), "clerk-b"
    )
    await step_up(platform, clock, admin_a, token_a)
    attempts = [
        lambda s, p: s.account_for(p, member_b),
        lambda s, p: s.grant_role(p, member_b, "front_desk"),
        lambda s, p: s.revoke_role(p, member_b, "front_desk"),
        lambda s, p: s.reset_password(p, member_b),
        lambda s, p: s.unlock(p, member_b),
        lambda s, p: s.account_for(p, "no-such-id"),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound):
            await as_principal(platform, token_a, attempt)
    listed = await as_principal(platform, token_a, lambda s, p: s.list_accounts(p))
    assert [a.login for a, _ in listed] == ["sa-a"]


# --- second factor ---------------------------------------------------------------------------
@pytest.mark.req("R17")
async def test_a_totp_code_cannot_be_used_twice(platform: Platform, clock: FixedClock) -> None:
    admin = await make_admin(platform)
    token = await login_token(platform, "sa-one")
    clock.advance(seconds=totp.STEP_SECONDS)
    code = totp.code_at(admin.secret, clock.now())
    await as_principal(platform, token, lambda s, p: s.step_up(p, code))
    with pytest.raises(Forbidden) as replay:
        await as_principal(platform, token, lambda s, p: s.step_up(p, code))
    assert replay.value.code == "second_factor_invalid"
    with pytest.raises(Unauthenticated):  # nor at login
        await login_token(platform, "sa-one", code=code)
    # A code one step old is still accepted (clock drift) if no later code was used.
    clock.advance(seconds=totp.STEP_SECONDS)
    previous = totp.code_at(admin.secret, clock.now())
    clock.advance(seconds=totp.STEP_SECONDS)
    assert await login_token(platform, "sa-one", code=previous)
    clock.advance(seconds=totp.STEP_SECONDS * 3)
    stale = totp.code_at(admin.secret, clock.now())
    clock.advance(seconds=totp.STEP_SECONDS * 2)
    with pytest.raises(Unauthenticated):  # two steps old: outside the ±1 window
        await login_token(platform, "sa-one", code=stale)


@pytest.mark.req("R17")
async def test_sensitive_operations_need_a_recent_step_up(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform)
    token = await login_token(platform, "sa-one")
    with pytest.raises(SecondFactorRequired) as required:
        await as_principal(
            platform, token, lambda s, p: s.create_account(p, login="clerk", display_name="C")
        )
    assert required.value.code == "second_factor_required"
    assert required.value.status == 403
    await step_up(platform, clock, admin, token)
    account, _ = await as_principal(
        platform, token, lambda s, p: s.create_account(p, login="clerk", display_name="C")
    )
    clock.advance(seconds=platform.settings.second_factor_window_seconds - 1)
    await as_principal(platform, token, lambda s, p: s.grant_role(p, account.id, "front_desk"))
    clock.advance(seconds=2)
    for op in (
        lambda s, p: s.grant_role(p, account.id, "landlord"),
        lambda s, p: s.reset_password(p, account.id),
        lambda s, p: s.create_api_key(p, name="pms", roles=["front_desk"], ttl_days=None),
    ):
        with pytest.raises(SecondFactorRequired):
            await as_principal(platform, token, op)
    code = totp.code_at(admin.secret, clock.now())
    with_code = await login_token(platform, "sa-one", code=code)  # step up at sign-in
    await as_principal(platform, with_code, lambda s, p: s.grant_role(p, account.id, "landlord"))


@pytest.mark.req("R17", "F1")
async def test_wrong_second_factor_codes_count_towards_lockout(
    platform: Platform, clock: FixedClock
) -> None:
    await make_admin(platform)
    token = await login_token(platform, "sa-one")
    for _ in range(platform.settings.login_max_failures):
        with pytest.raises(Forbidden):
            await as_principal(platform, token, lambda s, p: s.step_up(p, "000000"))
    with pytest.raises(AccountLocked):
        await login_token(platform, "sa-one")


# --- sessions and API keys -------------------------------------------------------------------
@pytest.mark.req("R16", "F1")
async def test_sessions_expire_when_idle_and_absolutely_and_on_logout(
    platform: Platform, clock: FixedClock
) -> None:
    await make_admin(platform)
    idle = platform.settings.session_idle_seconds
    token = await login_token(platform, "sa-one")
    clock.advance(seconds=idle - 1)
    await as_principal(platform, token, lambda s, p: _return(p))  # activity keeps it alive
    clock.advance(seconds=idle - 1)
    await as_principal(platform, token, lambda s, p: _return(p))
    clock.advance(seconds=idle)
    with pytest.raises(Unauthenticated):
        await as_principal(platform, token, lambda s, p: _return(p))

    token = await login_token(platform, "sa-one")
    elapsed = 0
    while elapsed + idle // 2 < platform.settings.session_ttl_seconds:
        clock.advance(seconds=idle // 2)
        elapsed += idle // 2
        await as_principal(platform, token, lambda s, p: _return(p))
    clock.advance(seconds=idle // 2)  # past the absolute lifetime despite activity
    with pytest.raises(Unauthenticated):
        await as_principal(platform, token, lambda s, p: _return(p))

    token = await login_token(platform, "sa-one")
    await as_principal(platform, token, lambda s, p: s.logout(p))
    with pytest.raises(Unauthenticated):
        await as_principal(platform, token, lambda s, p: _return(p))


@pytest.mark.req("R16", "R15")
async def test_api_keys_carry_their_scopes_expire_and_can_be_revoked(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform)
    token = await login_token(platform, "sa-one")
    await step_up(platform, clock, admin, token)
    with pytest.raises(Forbidden):  # no administrative key
        await as_principal(
            platform,
            token,
            lambda s, p: s.create_api_key(p, name="x", roles=["security_admin"], ttl_days=None),
        )
    issued = await as_principal(
        platform,
        token,
        lambda s, p: s.create_api_key(p, name="pms", roles=["front_desk"], ttl_days=30),
    )
    assert issued.token.startswith("anju_" + issued.key.prefix + "_")
    principal = await as_principal(platform, issued.token, lambda s, p: _return(p))
    assert principal.kind == "apikey"
    assert principal.org_id == admin.org_id
    assert principal.capabilities == ROLES[Role.FRONT_DESK].capabilities  # no more
    assert Cap.ACCOUNTS_MANAGE not in principal.capabilities
    with pytest.raises(Forbidden):  # its scope does not include account administration
        await as_principal(platform, issued.token, lambda s, p: s.list_accounts(p))
    with pytest.raises(SecondFactorRequired):  # keys never pass a second-factor check
        await as_principal(platform, issued.token, lambda s, p: _return(s.require_second_factor(p)))
    tampered = issued.token[:-2] + ("AA" if not issued.token.endswith("AA") else "BB")
    with pytest.raises(Unauthenticated):
        await as_principal(platform, tampered, lambda s, p: _return(p))
    clock.advance(days=31)
    with pytest.raises(Unauthenticated):
        await as_principal(platform, issued.token, lambda s, p: _return(p))

    token = await login_token(platform, "sa-one")
    await step_up(platform, clock, admin, token)
    second = await as_principal(
        platform,
        token,
        lambda s, p: s.create_api_key(p, name="ota", roles=["landlord"], ttl_days=9999),
    )
    limit_days = platform.settings.api_key_ttl_days
    assert (second.key.expires_at - second.key.created_at).days == limit_days  # capped
    assert await as_principal(platform, second.token, lambda s, p: _return(p))
    await as_principal(platform, token, lambda s, p: s.revoke_api_key(p, second.key.id))
    with pytest.raises(Unauthenticated):
        await as_principal(platform, second.token, lambda s, p: _return(p))


# --- audit and storage -----------------------------------------------------------------------
@pytest.mark.req("F1", "L17")
async def test_audit_has_logins_lockout_and_role_changes_without_secrets(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform)
    token = await login_token(platform, "sa-one")
    member, _ = await make_member(platform, clock, admin, token, "clerk")
    await step_up(platform, clock, admin, token)
    await as_principal(platform, token, lambda s, p: s.grant_role(p, member, "front_desk"))
    await as_principal(platform, token, lambda s, p: s.revoke_role(p, member, "front_desk"))
    for _ in range(platform.settings.login_max_failures):
        with pytest.raises(Unauthenticated):
            await login_token(platform, "clerk", "Wrong-Password-1")
    with pytest.raises(AccountLocked):
        await login_token(platform, "clerk")
    with pytest.raises(Unauthenticated):
        await login_token(platform, "ghost", "Ghost-Password-9")

    rows = await audit_rows(platform)
    actions = [r.action for r in rows]
    for expected in (
        "accounts.login.succeeded",
        "accounts.login.failed",
        "accounts.login.locked_out",
        "accounts.role.granted",
        "accounts.role.revoked",
        "accounts.second_factor.verified",
        "accounts.password.changed",
        "accounts.totp.enabled",
    ):
        assert expected in actions, expected
    locked_out = next(r for r in rows if r.action == "accounts.login.locked_out")
    assert locked_out.target == f"account:{member}"
    failures = [r for r in rows if r.action == "accounts.login.failed"]
    assert {r.outcome for r in failures} == {"failure", "denied"}
    assert any('"unknown_login"' in r.details for r in failures)
    granted = [r for r in rows if r.action == "accounts.role.granted" and r.outcome == "success"]
    assert any(r.actor == f"account:{admin.id}" and "front_desk" in r.details for r in granted)
    everything = " ".join(f"{r.actor} {r.target} {r.details}" for r in rows)
    for secret in (PASSWORD, "Wrong-Password-1", "Ghost-Password-9", "ghost", admin.secret):
        assert secret not in everything


@pytest.mark.req("R16", "L13")
async def test_totp_secret_and_tokens_are_never_stored_in_clear(
    platform: Platform, clock: FixedClock
) -> None:
    admin = await make_admin(platform)
    token = await login_token(platform, "sa-one")
    await step_up(platform, clock, admin, token)
    issued = await as_principal(
        platform, token, lambda s, p: s.create_api_key(p, name="k", roles=["landlord"], ttl_days=1)
    )
    secrets_ = [admin.secret.encode(), token.encode(), issued.token.split("_", 2)[2].encode()]
    async with platform.db.transaction() as s:
        dump = b""
        for table in ("accounts", "login_sessions", "api_keys", "audit_entries"):
            for row in (await s.execute(text(f"SELECT * FROM {table}"))).all():  # noqa: S608
                for value in row:
                    dump += value if isinstance(value, bytes) else str(value).encode()
                    dump += b"|"
    assert admin.id.encode() in dump  # the scan does see the rows
    for secret in secrets_:
        assert secret not in dump
    assert PASSWORD.encode() not in dump


@pytest.mark.req("R16")
async def test_a_sealed_totp_secret_does_not_open_for_another_account(
    platform: Platform,
) -> None:
    first = await make_admin(platform, "sa-a", "Org A")
    second = await make_admin(platform, "sa-b", "Org B")
    async with platform.db.transaction() as s:
        rows = {a.id: a for a in (await s.scalars(select(Account))).all()}
        rows[second.id].totp_secret_sealed = rows[first.id].totp_secret_sealed
    with pytest.raises(AnjuError) as caught:
        await login_token(platform, "sa-b", code=totp.code_at(first.secret, platform.clock.now()))
    assert caught.value.code == "integrity_check_failed"
