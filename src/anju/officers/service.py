"""Officer jurisdictions (set by a security administrator, audited) and officer queries.

Every query — answered or refused — is inserted into ``officer_queries`` and written to the
audit log: one ``officers.query`` entry, plus one ``officers.query_subject`` entry per person
it touched (target ``subject:<id>``, in that person's organisation) so the person's own access
trail and their organisation's auditors see it. The caller commits, also for a refusal: the
answer carries the refusal and the endpoint raises it after the commit (docs/officers.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.accounts.principal import Principal
from anju.accounts.roles import Cap, Role
from anju.accounts.service import AccountService
from anju.audit import AuditLog
from anju.audit.encoding import time_text
from anju.audit.service import NewEntry
from anju.db import new_id
from anju.errors import AnjuError, InvalidInput, NotFound
from anju.kit.masking import mask_generic
from anju.officers.models import OfficerJurisdiction, OfficerQuery
from anju.officers.regions import check_region_prefix, orgs_in_regions
from anju.officers.repository import OfficersRepository
from anju.officers.rules import (
    BASES,
    MAX_PREFIXES,
    MAX_RESULTS,
    LegalBasis,
    OutsideJurisdiction,
    UnmaskNotAllowed,
    check_unmask,
    check_window,
    outside,
)
from anju.people.models import Person
from anju.people.rights import OFFICER_QUERY_ACTION
from anju.people.service import Actor, PeopleService, view_of
from anju.people.validation.documents import parse_document_type
from anju.platform import Platform
from anju.privacy.inventory import Purpose
from anju.unlocks.service import record_view


@dataclass(frozen=True)
class LockTarget:
    """What a lock query names: one lock, or a room (every lock bound to it)."""

    device_id: str | None = None
    room_id: str | None = None

    def __post_init__(self) -> None:
        if (self.device_id is None) == (self.room_id is None):
            raise InvalidInput(
                "请给出门锁或房间之一 / give either a lock or a room",
                details={"field": "device_id"},
            )

    def criteria(self) -> dict[str, str]:
        if self.room_id is not None:
            return {"room_id": self.room_id}
        return {"device_id": self.device_id or ""}


@dataclass
class Answer:
    """What an officer query returns, or the refusal to raise once the record is committed."""

    query_id: str
    basis_type: str
    unmasked: bool
    refusal: AnjuError | None = None
    people: list[dict[str, Any]] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)
    unlocks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.people) + len(self.grants) + len(self.unlocks)


def grant_view(grant: Any, *, reveal_subject: bool) -> dict[str, Any]:
    return {
        "id": grant.id,
        "org_id": grant.org_id,
        "subject": grant.subject_id if reveal_subject else mask_generic(grant.subject_id),
        "person_type": grant.person_type,
        "device_ids": json.loads(grant.device_ids),
        "valid_from": grant.valid_from,
        "valid_until": grant.valid_until,
        "status": grant.status,
    }


def query_view(row: OfficerQuery) -> dict[str, Any]:
    """The record of a query as an auditor sees it."""
    return {
        "id": row.id,
        "officer": row.officer,
        "officer_org_id": row.officer_org_id,
        "basis_type": row.basis_type,
        "case_number": row.case_number,
        "reason": row.reason,
        "kind": row.kind,
        "criteria": json.loads(row.criteria),
        "unmask": row.unmask,
        "outcome": row.outcome,
        "refusal": row.refusal,
        "subject_ids": json.loads(row.subject_ids),
        "result_count": row.result_count,
        "at": row.at,
    }


class OfficerService:
    """Jurisdictions and queries of one transaction (the caller commits)."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self.platform = platform
        self.session = session
        self.repo = OfficersRepository(session)
        self.accounts = AccountService(platform, session)
        self.audit = AuditLog(platform)

    # --- jurisdictions ---------------------------------------------------------------------
    async def _officer_account(self, principal: Principal | None, account_id: str) -> None:
        """The account must exist (in the administrator's organisation) and be an officer."""
        account = None
        if len(account_id) <= 36:
            account = (
                await self.accounts.repo.account(account_id)
                if principal is None
                else await self.accounts.repo.account_in_org(account_id, principal.org_id)
            )
        if account is None:
            raise NotFound("账号不存在 / no such account", details={"account_id": account_id})
        if Role.OFFICER.value not in await self.accounts.roles_of(account_id):
            raise InvalidInput(
                "该账号不是执法人员 / the account does not hold the officer role",
                details={"account_id": account_id},
            )

    async def set_jurisdiction(
        self, principal: Principal | None, account_id: str, prefixes: Sequence[str]
    ) -> list[str]:
        """Replace an officer's jurisdiction (security administrator with a recent second
        factor, or the CLI when ``principal`` is None); audited."""
        if principal is not None:
            AccountService.require(principal, Cap.ROLES_GRANT)
            self.accounts.require_second_factor(principal)
        checked = sorted({check_region_prefix(p) for p in prefixes})
        if len(checked) > MAX_PREFIXES:
            raise InvalidInput(
                f"辖区前缀至多 {MAX_PREFIXES} 个 / at most {MAX_PREFIXES} region prefixes",
                details={"field": "region_prefixes"},
            )
        await self._officer_account(principal, account_id)
        actor = principal.actor if principal is not None else "cli"
        now = self.platform.clock.now()
        rows = [OfficerJurisdiction(
            account_id=account_id, region_prefix=p, granted_by=actor, granted_at=now
        ) for p in checked]  # fmt: skip
        before = await self.repo.prefixes(account_id)
        await self.repo.replace_prefixes(rows, account_id)
        await self.audit.record(
            self.session,
            action="officers.jurisdiction_set",
            actor=actor,
            org_id=principal.org_id if principal is not None else None,
            target=f"account:{account_id}",
            details={"before": ",".join(before), "after": ",".join(checked)},
        )
        return checked

    async def jurisdiction(self, principal: Principal | None, account_id: str) -> list[str]:
        if principal is None or principal.id != account_id:
            if principal is not None:
                AccountService.require(principal, Cap.ROLES_GRANT)
            await self._officer_account(principal, account_id)
        return await self.repo.prefixes(account_id)

    # --- queries ---------------------------------------------------------------------------
    async def _orgs(self, principal: Principal) -> set[str]:
        prefixes = await self.repo.prefixes(principal.id) if principal.kind == "account" else []
        return await orgs_in_regions(self.platform, self.session, prefixes) if prefixes else set()

    async def query_person(
        self,
        principal: Principal,
        basis: LegalBasis,
        document_type: str,
        document_number: str,
        *,
        unmask: bool = False,
    ) -> Answer:
        """Registrations, grants and unlock records of the person with this document, in the
        officer's jurisdiction only (registrations elsewhere are neither read nor revealed)."""
        AccountService.require(principal, Cap.OFFICER_QUERY)
        kind = parse_document_type(document_type)
        index = PeopleService(self.platform, self.session).document_index(kind, document_number)
        criteria = {"document_type": kind.value}
        answer = Answer(new_id().replace("-", ""), basis.type.value, unmask)
        try:
            check_unmask(basis, unmask)
        except UnmaskNotAllowed as refusal:
            return await self._record(principal, basis, "person", criteria, answer, refusal)
        orgs = await self._orgs(principal)
        people = await self.repo.people_by_document(index, orgs, MAX_RESULTS)
        subjects = {p.subject_id for p in people}
        for person in people:
            answer.people.append(await self._person_view(principal, person, unmask))
        answer.grants = [
            grant_view(g, reveal_subject=unmask)
            for g in await self.repo.grants_of(subjects, orgs, MAX_RESULTS)
        ]
        answer.unlocks = [
            record_view(r, reveal_subject=unmask)
            for r in await self.repo.unlocks_of(subjects, orgs, MAX_RESULTS)
        ]
        touched = {p.subject_id: p.org_id for p in people}
        return await self._record(principal, basis, "person", criteria, answer, None, touched)

    async def query_lock(
        self,
        principal: Principal,
        basis: LegalBasis,
        target: LockTarget,
        since: datetime,
        until: datetime,
        *,
        unmask: bool = False,
    ) -> Answer:
        """Unlock records of one lock, or of the locks bound to one room, with lock time in
        [since, until); outside the jurisdiction (or no such lock or room) is refused the same
        way, and recorded."""
        AccountService.require(principal, Cap.OFFICER_QUERY)
        check_window(since, until)
        criteria = {**target.criteria(), "since": time_text(since), "until": time_text(until)}
        answer = Answer(new_id().replace("-", ""), basis.type.value, unmask)
        try:
            check_unmask(basis, unmask)
        except UnmaskNotAllowed as refusal:
            return await self._record(principal, basis, "lock", criteria, answer, refusal)
        found = await self._locks(target)
        orgs = await self._orgs(principal)
        if found is None or found[0] not in orgs:
            return await self._record(principal, basis, "lock", criteria, answer, outside())
        org_id, device_ids = found
        rows = await self.repo.unlocks_at(device_ids, org_id, since, until, MAX_RESULTS)
        answer.unlocks = [record_view(r, reveal_subject=unmask) for r in rows]
        touched = {r.subject: org_id for r in rows if r.subject is not None}
        return await self._record(principal, basis, "lock", criteria, answer, None, touched)

    async def _locks(self, target: LockTarget) -> tuple[str, list[str]] | None:
        """The organisation and lock ids a target names (None: no such lock or room)."""
        if target.room_id is not None:
            return await self.repo.room_locks(target.room_id) if len(target.room_id) <= 36 else None
        device_id = target.device_id or ""
        device = await self.repo.device(device_id) if 0 < len(device_id) <= 32 else None
        if device is None or device.org_id is None:
            return None
        return device.org_id, [device.id]

    async def _person_view(
        self, principal: Principal, person: Person, unmask: bool
    ) -> dict[str, Any]:
        view: dict[str, Any] = {
            **view_of(person).as_dict(),
            "org_id": person.org_id,
            "registered_at": person.created_at,
        }
        if unmask:
            people = PeopleService(self.platform, self.session)
            actor = Actor(principal.actor, person.org_id)
            view["clear"] = {
                column: await people.open_field(person, column, Purpose.LAWFUL_REQUEST, actor)
                for column in ("name", "document_number")
            }
        return view

    async def _record(
        self,
        principal: Principal,
        basis: LegalBasis,
        kind: str,
        criteria: dict[str, str],
        answer: Answer,
        refusal: AnjuError | None,
        touched: Mapping[str, str | None] | None = None,
    ) -> Answer:
        """Insert the query record and its audit entries; attach the refusal, if any."""
        touched = touched or {}
        outcome = "refused" if refusal is not None else "answered"
        answer.refusal = refusal
        row = OfficerQuery(
            id=answer.query_id,
            officer=principal.actor,
            officer_org_id=principal.org_id,
            basis_type=basis.type.value,
            case_number=basis.case_number,
            reason=basis.reason,
            kind=kind,
            criteria=json.dumps(criteria, sort_keys=True),
            unmask=answer.unmasked,
            outcome=outcome,
            refusal=refusal.code if refusal is not None else None,
            subject_ids=json.dumps(sorted(touched)),
            result_count=answer.count,
            at=self.platform.clock.now(),
        )
        await self.repo.add_query(row)
        entries = [
            NewEntry(
                action="officers.query",
                actor=principal.actor,
                org_id=principal.org_id,
                target=f"officer_query:{row.id}",
                outcome="denied" if refusal is not None else "success",
                details={
                    "kind": kind,
                    "basis": basis.type.value,
                    "unmask": answer.unmasked,
                    "subjects": len(touched),
                    "returned": row.result_count,
                    "refusal": row.refusal,
                },
            )
        ]
        entries += [
            NewEntry(
                action=OFFICER_QUERY_ACTION,
                actor=principal.actor,
                org_id=org_id,
                target=f"subject:{subject_id}",
                details={
                    "query_id": row.id,
                    "basis": basis.type.value,
                    "purpose": Purpose.LAWFUL_REQUEST.value,
                },
            )
            for subject_id, org_id in sorted(touched.items())
        ]
        await self.audit.record_many(self.session, entries)
        return answer

    async def queries(
        self, principal: Principal, *, limit: int, offset: int
    ) -> Sequence[OfficerQuery]:
        """Recorded officer queries, newest first (auditors: of officers of their organisation;
        a platform-level auditor: all of them); the read is audited."""
        AccountService.require(principal, Cap.AUDIT_READ)
        rows = await self.repo.queries(principal.org_id, limit=limit, offset=offset)
        await self.audit.record(
            self.session,
            action="officers.queries_read",
            actor=principal.actor,
            org_id=principal.org_id,
            target="officer_queries",
            details={"returned": len(rows)},
        )
        return rows


__all__ = ["BASES", "Answer", "LockTarget", "OfficerService", "OutsideJurisdiction", "query_view"]
