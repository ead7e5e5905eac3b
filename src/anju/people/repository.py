"""Queries of the people domain (and the audit entries about a subject, for the access trail)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit.models import AuditEntry
from anju.people.models import IdentityVerification, Person, SubjectAccessLink

NO_ORG = "-"


def org_scope(org_id: str | None) -> str:
    """The organisation a person is registered in, for the uniqueness rule (``-``: none)."""
    return NO_ORG if org_id is None else org_id


class PeopleRepository:
    """Rows of people, verifications and access links in one session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, row: Person | IdentityVerification | SubjectAccessLink) -> None:
        self._session.add(row)
        await self._session.flush()

    async def person(self, person_id: str) -> Person | None:
        return await self._session.get(Person, person_id)

    async def by_document(self, org_id: str | None, document_index: bytes) -> Person | None:
        """The person of ``org_id`` registered with this document (blind index)."""
        stmt = select(Person).where(
            Person.document_index == document_index, Person.org_scope == org_scope(org_id)
        )
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def by_phone(self, org_id: str | None, phone_index: bytes) -> Sequence[Person]:
        """People of ``org_id`` with this phone number (blind index; several may share one)."""
        stmt = (
            select(Person)
            .where(Person.phone_index == phone_index, Person.org_scope == org_scope(org_id))
            .order_by(Person.created_at, Person.id)
            .limit(50)
        )
        return (await self._session.execute(stmt)).scalars().all()

    async def verifications_of(self, subject_id: str) -> Sequence[IdentityVerification]:
        stmt = (
            select(IdentityVerification)
            .where(IdentityVerification.subject_id == subject_id)
            .order_by(IdentityVerification.at, IdentityVerification.id)
        )
        return (await self._session.execute(stmt)).scalars().all()

    async def verification_using_capture(self, capture_id: str) -> IdentityVerification | None:
        stmt = select(IdentityVerification).where(
            IdentityVerification.face_capture_id == capture_id
        )
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def verification(self, verification_id: str) -> IdentityVerification | None:
        return await self._session.get(IdentityVerification, verification_id)

    async def link_by_hash(self, token_hash: bytes) -> SubjectAccessLink | None:
        stmt = select(SubjectAccessLink).where(SubjectAccessLink.token_hash == token_hash)
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def revoke_links(self, person_id: str) -> None:
        stmt = select(SubjectAccessLink).where(SubjectAccessLink.person_id == person_id)
        for link in (await self._session.execute(stmt)).scalars():
            link.revoked = True
        await self._session.flush()

    async def trail(
        self,
        subject_id: str,
        person_id: str,
        *,
        limit: int | None,
        before: datetime | None = None,
    ) -> Sequence[AuditEntry]:
        """Audit entries about the subject or the person record, newest first (all of them
        when ``limit`` is None)."""
        stmt = (
            select(AuditEntry)
            .where(
                or_(
                    AuditEntry.target == f"subject:{subject_id}",
                    AuditEntry.target == f"person:{person_id}",
                )
            )
            .order_by(AuditEntry.leaf_index.desc())
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        if before is not None:
            stmt = stmt.where(AuditEntry.recorded_at < before)
        return (await self._session.execute(stmt)).scalars().all()
