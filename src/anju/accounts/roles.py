"""Roles, their capabilities and the separation-of-duties rules — the one place they live.

L7 asks for separate security administrator, data operator and auditor roles; R16 asks for
separation of program and data administration and least privilege. Every permission check in
anju asks for a named *capability*; roles are only bundles of capabilities, declared here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from anju.errors import Forbidden, InvalidInput


class Role(StrEnum):
    SECURITY_ADMIN = "security_admin"
    DATA_OPERATOR = "data_operator"
    AUDITOR = "auditor"
    FRONT_DESK = "front_desk"
    PROPERTY_MANAGER = "property_manager"
    LANDLORD = "landlord"
    OFFICER = "officer"


class Cap(StrEnum):
    """Named capabilities. Endpoints ask for these, never for roles."""

    ACCOUNTS_READ = "accounts.read"
    ACCOUNTS_MANAGE = "accounts.manage"  # create, reset password, unlock
    ROLES_GRANT = "roles.grant"  # grant and revoke roles
    APIKEYS_MANAGE = "apikeys.manage"
    KEYS_MANAGE = "keys.manage"  # master keys, rotation
    DEVICES_MANAGE = "devices.manage"  # admit, revoke devices
    DEVICES_READ = "devices.read"  # device registry: state, attributes, operation records
    PI_READ = "pi.read"  # decrypt PI within a stated purpose
    PI_WRITE = "pi.write"
    PI_READ_MASKED = "pi.read_masked"  # masked display only (110105********002X)
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    STAYS_MANAGE = "stays.manage"
    STAYS_READ = "stays.read"
    PROPERTIES_MANAGE = "properties.manage"
    PROPERTIES_READ = "properties.read"
    ACCESS_MANAGE = "access.manage"  # issue, freeze, revoke credentials
    ACCESS_READ = "access.read"  # grants, credentials, delivery states, freezes, anomalies
    OFFICER_QUERY = "officer.query"  # read-only queries with a recorded legal basis
    BIOMETRICS_VERIFY = "biometrics.verify"  # face checks with liveness (remote, F8)
    BIOMETRICS_ENROL = "biometrics.enrol"  # enrol faces on devices, send / withdraw templates
    PEOPLE_REGISTER = "people.register"  # register + verify people, hand them an access link
    RECORDS_READ = "access.records.read"  # unlock records (subjects masked without pi.read)
    ALARMS_MANAGE = "alarms.manage"  # see, acknowledge and clear alarms, follow the stream
    WEBHOOKS_MANAGE = "webhooks.manage"  # register webhook endpoints, read their delivery log
    NOTICES_MANAGE = "notices.manage"  # publish privacy notices (new versions)
    CONSENT_RECORD = "consent.record"  # record consent events, read them, issue receipts
    RETENTION_MANAGE = "retention.manage"  # anchors, account closure, run the sweep
    REPORTS_READ = "reports.read"  # regulator report outbox and delivery log (no PI)
    REQUESTS_MANAGE = "requests.manage"  # tenants' requests (text: audited), staff activity


@dataclass(frozen=True)
class RoleInfo:
    role: Role
    title_zh: str
    title_en: str
    capabilities: frozenset[Cap]


def _info(role: Role, zh: str, en: str, *caps: Cap) -> RoleInfo:
    return RoleInfo(role, zh, en, frozenset(caps))


ROLES: dict[Role, RoleInfo] = {
    info.role: info
    for info in (
        _info(
            Role.SECURITY_ADMIN,
            "安全管理员",
            "Security administrator",
            Cap.ACCOUNTS_READ,
            Cap.ACCOUNTS_MANAGE,
            Cap.ROLES_GRANT,
            Cap.APIKEYS_MANAGE,
            Cap.KEYS_MANAGE,
            Cap.DEVICES_MANAGE,
            Cap.DEVICES_READ,
            Cap.ALARMS_MANAGE,
            Cap.WEBHOOKS_MANAGE,
            Cap.REPORTS_READ,
        ),
        _info(
            Role.DATA_OPERATOR,
            "数据操作员",
            "Data operator",
            Cap.PI_READ,
            Cap.PI_WRITE,
            Cap.PI_READ_MASKED,
            Cap.STAYS_READ,
            Cap.PROPERTIES_READ,
            Cap.NOTICES_MANAGE,
            Cap.CONSENT_RECORD,
            Cap.RETENTION_MANAGE,
        ),
        _info(
            Role.AUDITOR,
            "审计员",
            "Auditor",
            Cap.AUDIT_READ,
            Cap.AUDIT_VERIFY,
            Cap.RECORDS_READ,
            Cap.REPORTS_READ,
        ),
        _info(
            Role.FRONT_DESK,
            "前台",
            "Front desk",
            Cap.STAYS_MANAGE,
            Cap.STAYS_READ,
            Cap.PI_READ_MASKED,
            Cap.PROPERTIES_READ,
            Cap.BIOMETRICS_VERIFY,
            Cap.BIOMETRICS_ENROL,
            Cap.PEOPLE_REGISTER,
            Cap.CONSENT_RECORD,
            Cap.REQUESTS_MANAGE,
        ),
        _info(
            Role.PROPERTY_MANAGER,
            "物业管理员",
            "Property manager",
            Cap.PROPERTIES_MANAGE,
            Cap.PROPERTIES_READ,
            Cap.STAYS_MANAGE,
            Cap.STAYS_READ,
            Cap.ACCESS_MANAGE,
            Cap.ACCESS_READ,
            Cap.RECORDS_READ,
            Cap.ALARMS_MANAGE,
            Cap.PI_READ_MASKED,
            Cap.DEVICES_READ,
            Cap.BIOMETRICS_VERIFY,
            Cap.BIOMETRICS_ENROL,
            Cap.PEOPLE_REGISTER,
            Cap.CONSENT_RECORD,
            Cap.REQUESTS_MANAGE,
        ),
        _info(
            Role.LANDLORD,
            "房东",
            "Landlord",
            Cap.PROPERTIES_READ,
            Cap.DEVICES_READ,
            Cap.STAYS_READ,
            Cap.PI_READ_MASKED,
            Cap.ACCESS_READ,
            Cap.RECORDS_READ,
        ),
        _info(Role.OFFICER, "执法人员", "Officer", Cap.OFFICER_QUERY, Cap.PI_READ_MASKED),
    )
}

#: Capabilities that reveal or process personal information in any form (clear, masked, faces).
PI_CAPABILITIES: frozenset[Cap] = frozenset(
    {
        Cap.PI_READ,
        Cap.PI_WRITE,
        Cap.PI_READ_MASKED,
        Cap.OFFICER_QUERY,
        Cap.BIOMETRICS_VERIFY,
        Cap.BIOMETRICS_ENROL,
        Cap.PEOPLE_REGISTER,
        Cap.CONSENT_RECORD,
        Cap.RETENTION_MANAGE,
        Cap.REQUESTS_MANAGE,
    }
)

#: L7: administrator, auditor and data operator are three different people.
EXCLUSIVE_PAIRS: frozenset[frozenset[Role]] = frozenset(
    {
        frozenset({Role.SECURITY_ADMIN, Role.AUDITOR}),
        frozenset({Role.SECURITY_ADMIN, Role.DATA_OPERATOR}),
        frozenset({Role.AUDITOR, Role.DATA_OPERATOR}),
    }
)

#: Roles an integration API key may carry (no key can administer accounts or keys).
API_KEY_ROLES: frozenset[Role] = frozenset(ROLES) - {Role.SECURITY_ADMIN}


def parse_role(name: str) -> Role:
    """The role called ``name``, or ``InvalidInput`` listing the known ones."""
    try:
        return Role(name)
    except ValueError:
        raise InvalidInput(
            f"未知角色 / unknown role {name!r}",
            details={"known_roles": sorted(r.value for r in Role)},
        ) from None


def capabilities_of(roles: Iterable[Role]) -> frozenset[Cap]:
    """Union of the capabilities of ``roles``."""
    caps: set[Cap] = set()
    for role in roles:
        caps |= ROLES[role].capabilities
    return frozenset(caps)


def check_combination(roles: Iterable[Role]) -> None:
    """Refuse a set of roles that one account (or key) must never hold together."""
    held = frozenset(roles)
    for pair in EXCLUSIVE_PAIRS:
        if pair <= held:
            a, b = sorted(pair)
            raise Forbidden(
                f"职责分离：{a} 与 {b} 不能由同一账号担任 / separation of duties: "
                f"{a} and {b} cannot be held by the same account",
                details={"conflicting_roles": [a.value, b.value]},
            )
    if Role.SECURITY_ADMIN in held:
        leaking = capabilities_of(held - {Role.SECURITY_ADMIN}) & PI_CAPABILITIES
        if leaking:
            raise Forbidden(
                "安全管理员不得读取个人信息 / a security administrator may not read "
                "personal information",
                details={"pi_capabilities": sorted(c.value for c in leaking)},
            )


def _check_table() -> None:
    """The table itself must obey the rules (checked at import, so a bad edit fails fast)."""
    if ROLES[Role.SECURITY_ADMIN].capabilities & PI_CAPABILITIES:
        raise AssertionError("security_admin must never hold a PI capability")
    if Cap.AUDIT_READ in ROLES[Role.SECURITY_ADMIN].capabilities:
        raise AssertionError("security_admin must not read the audit log it is audited by")


_check_table()
