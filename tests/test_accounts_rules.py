"""The role table, separation rules, password policy and TOTP window, plus model ↔ migration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import combinations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from anju.accounts import models, totp
from anju.accounts.passwords import policy_failures, temporary_password
from anju.accounts.roles import (
    API_KEY_ROLES,
    EXCLUSIVE_PAIRS,
    PI_CAPABILITIES,
    ROLES,
    Cap,
    Role,
    capabilities_of,
    check_combination,
)
from anju.db import Base
from anju.errors import Forbidden
from anju.platform import Platform

ACCOUNT_TABLES = {"organisations", "accounts", "role_assignments", "login_sessions", "api_keys"}


@pytest.mark.req("L7", "R16")
def test_every_role_is_declared_with_bilingual_titles() -> None:
    assert set(ROLES) == set(Role)
    for info in ROLES.values():
        assert info.title_zh
        assert info.title_en
        assert info.capabilities


@pytest.mark.req("L7")
def test_security_admin_holds_no_pi_and_no_audit_capability() -> None:
    caps = ROLES[Role.SECURITY_ADMIN].capabilities
    assert not caps & PI_CAPABILITIES
    assert Cap.AUDIT_READ not in caps
    assert Cap.ROLES_GRANT in caps
    assert Cap.KEYS_MANAGE in caps
    # Only security administrators administer roles; only auditors read the audit log.
    assert {r for r, i in ROLES.items() if Cap.ROLES_GRANT in i.capabilities} == {
        Role.SECURITY_ADMIN
    }
    assert {r for r, i in ROLES.items() if Cap.AUDIT_READ in i.capabilities} == {Role.AUDITOR}
    assert {r for r, i in ROLES.items() if Cap.PI_READ in i.capabilities} == {Role.DATA_OPERATOR}


@pytest.mark.req("L7")
def test_the_three_duties_are_mutually_exclusive() -> None:
    trio = (Role.SECURITY_ADMIN, Role.AUDITOR, Role.DATA_OPERATOR)
    for a, b in combinations(trio, 2):
        assert frozenset({a, b}) in EXCLUSIVE_PAIRS
        with pytest.raises(Forbidden):
            check_combination({a, b})
    for role in Role:
        if role is not Role.SECURITY_ADMIN and ROLES[role].capabilities & PI_CAPABILITIES:
            with pytest.raises(Forbidden):
                check_combination({Role.SECURITY_ADMIN, role})
    check_combination({Role.FRONT_DESK, Role.PROPERTY_MANAGER, Role.LANDLORD})
    check_combination({Role.AUDITOR, Role.LANDLORD})


@pytest.mark.req("L7")
def test_no_allowed_combination_gives_a_security_admin_pi() -> None:
    for size in range(1, len(Role) + 1):
        for combo in combinations(Role, size):
            try:
                check_combination(combo)
            except Forbidden:
                continue
            if Role.SECURITY_ADMIN in combo:
                assert not capabilities_of(combo) & PI_CAPABILITIES, combo
    assert Role.SECURITY_ADMIN not in API_KEY_ROLES


@pytest.mark.req("R17", "F1")
def test_password_policy_reasons() -> None:
    def codes(password: str, login: str = "zhang.wei") -> set[str]:
        return {f.code for f in policy_failures(password, login=login, min_length=12)}

    assert codes("Gr33n-Tea-Leaves") == set()
    assert codes("短密码Ab1") >= {"too_short"}
    assert codes("onlylowercaseletters") == {"too_few_character_classes"}
    assert codes("lowercase-with-symbols") == {"too_few_character_classes"}  # two classes
    assert codes("Zhang.Wei-2024!") == {"contains_login"}
    assert codes("P@ssw0rd1234") == {"too_common"}
    assert codes("Qwer1234!@#$") == {"too_common"}
    assert codes("x" * 300 + "A1!") == {"too_long"}
    assert codes("密码很长很长很长Abc123") == set()  # CJK counts as its own class
    for _ in range(50):
        assert codes(temporary_password(), login="clerk") == set()


@pytest.mark.req("R17")
def test_totp_accepts_one_step_of_drift_and_never_an_older_step() -> None:
    secret = totp.new_secret()
    now = datetime(2026, 3, 1, 8, 0, 15, tzinfo=UTC)
    current = totp.step_at(now)
    for offset in (-1, 0, 1):
        code = totp.code_at(secret, now + timedelta(seconds=30 * offset))
        assert totp.match_code(secret, code, now=now, last_step=None) == totp.Match(
            current + offset
        )
    for offset in (-3, -2, 2, 3):
        code = totp.code_at(secret, now + timedelta(seconds=30 * offset))
        assert totp.match_code(secret, code, now=now, last_step=None) is None
    code = totp.code_at(secret, now)
    assert totp.match_code(secret, code, now=now, last_step=current) is None
    assert totp.match_code(secret, code, now=now, last_step=current - 1) is not None
    for junk in ("", "12345", "1234567", "abcdef", "１２３４５６"):
        assert totp.match_code(secret, junk, now=now, last_step=None) is None


@pytest.mark.req("R16")
async def test_migration_matches_the_models(platform: Platform) -> None:
    assert models.Account.__table__.name in ACCOUNT_TABLES

    def diff(connection) -> list[object]:  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [
            d for d in compare_metadata(context, Base.metadata) if ACCOUNT_TABLES & _tables_in(d)
        ]

    async with platform.db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


def _tables_in(item: object) -> set[str]:
    """Table names an autogenerate diff item mentions (items nest tuples and lists)."""
    names: set[str] = set()
    stack = [item]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            names.add(current)
        elif isinstance(current, list | tuple):
            stack.extend(current)
        else:
            table = getattr(current, "table", current)
            name = getattr(table, "name", None)
            if isinstance(name, str):
                names.add(name)
    return names


@pytest.mark.req("L7")
def test_docs_role_table_matches_the_code() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "accounts.md").read_text()
    for role, info in ROLES.items():
        caps = ", ".join(f"`{c.value}`" for c in sorted(info.capabilities))
        row = f"| `{role.value}` | {info.title_zh} / {info.title_en} | {caps} |"
        assert row in doc, row
