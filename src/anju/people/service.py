"""People records: sealing and masking, look-up by blind index, purpose-bound decryption,
correction and deletion (crypto-shredding). The caller's transaction; the caller commits."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import AuditLog
from anju.errors import Conflict, InvalidInput, NotFound
from anju.kit.crypto import random_bytes
from anju.people.application import CORRECTABLE, PI_FIELDS, clean_contacts
from anju.people.models import Person
from anju.people.repository import PeopleRepository
from anju.people.validation.documents import (
    DocumentType,
    normalise_number,
    parse_document_type,
)
from anju.people.validation.names import validate_phone
from anju.platform import Platform
from anju.privacy.inventory import Purpose
from anju.privacy.vault import PIVault

SUBJECT_PREFIX = "psn_"
DELETION_REASONS = ("subject_request", "operator_request", "retention")


class DuplicatePerson(Conflict):
    code = "duplicate_person"


class PersonDeleted(Conflict):
    code = "person_deleted"


_SUBJECT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_subject_id(subject_id: str) -> str:
    """An opaque subject id (1–64 of ``A-Za-z0-9_-``), else ``invalid_input``."""
    if not _SUBJECT.match(subject_id):
        raise InvalidInput("主体标识须为 1–64 个字母、数字、_ 或 - / invalid subject id")
    return subject_id


def new_subject_id() -> str:
    """An opaque pseudonymous subject id (the one biometrics and access control use too)."""
    return SUBJECT_PREFIX + random_bytes(16).hex()


@dataclass(frozen=True)
class Actor:
    """Who acts (audit actor string) and for which organisation."""

    actor: str
    org_id: str | None


@dataclass(frozen=True)
class PersonView:
    """A person as shown by default: ids, kind, document type and masked values only."""

    id: str
    subject_id: str
    kind: str
    document_type: str
    status: str
    masked: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subject_id": self.subject_id,
            "kind": self.kind,
            "document_type": self.document_type,
            "status": self.status,
            "masked": self.masked,
        }


def view_of(person: Person) -> PersonView:
    return PersonView(
        person.id,
        person.subject_id,
        person.kind,
        person.document_type,
        person.status,
        json.loads(person.masked),
    )


class PeopleService:
    """Records of people in one session."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self._platform = platform
        self._session = session
        self._repo = PeopleRepository(session)
        self._vault = PIVault(platform)
        self._audit = AuditLog(platform)

    # --- indexes and sealing ---------------------------------------------------------------
    def document_index(self, document_type: DocumentType, number: str) -> bytes:
        """Blind index of a document (type and number): duplicates and look-ups."""
        return self._vault.blind_index(
            PI_FIELDS["document_number"], f"{document_type.value}:{normalise_number(number)}"
        )

    def phone_index(self, phone: str) -> bytes:
        return self._vault.blind_index(PI_FIELDS["phone"], phone)

    async def seal_into(self, person: Person, values: dict[str, str]) -> None:
        """Seal ``values`` (column -> clear) into the row and refresh its masked forms."""
        masked = json.loads(person.masked) if person.masked else {}
        for column, value in values.items():
            field = PI_FIELDS[column]
            sealed = await self._vault.seal(
                self._session, field, person.subject_id, person.id, value
            )
            setattr(person, column, sealed)
            masked[column] = self._vault.mask(field, value)
        if "phone" in values:
            person.phone_index = self.phone_index(values["phone"])
        person.masked = json.dumps(masked, ensure_ascii=False, sort_keys=True)

    # --- reading ---------------------------------------------------------------------------
    async def person(self, person_id: str, org_id: str | None) -> Person:
        """The person of ``org_id`` (another organisation's person is ``not_found``)."""
        row = await self._repo.person(person_id)
        if row is None or row.org_id != org_id:
            raise NotFound("没有此人 / no such person", details={"person_id": person_id})
        return row

    async def active_person(self, person_id: str, org_id: str | None) -> Person:
        row = await self.person(person_id, org_id)
        if row.status != "active":
            raise PersonDeleted("此人的信息已删除 / this person's data was deleted")
        return row

    async def find_by_document(
        self, org_id: str | None, document_type: str, number: str
    ) -> PersonView | None:
        """Look a person up by document without decrypting anything (blind index)."""
        kind = parse_document_type(document_type)
        row = await self._repo.by_document(org_id, self.document_index(kind, number))
        return None if row is None else view_of(row)

    async def find_by_phone(self, org_id: str | None, phone: str) -> list[PersonView]:
        """People with this phone number (blind index; masked)."""
        rows = await self._repo.by_phone(org_id, self.phone_index(validate_phone(phone)))
        return [view_of(row) for row in rows]

    async def reveal(
        self, actor: Actor, person_id: str, fields: list[str], purpose: str
    ) -> dict[str, str | None]:
        """Clear values of ``fields`` for a stated purpose; each decryption is audited with it."""
        try:
            stated = Purpose(purpose)
        except ValueError:
            raise InvalidInput(
                "未知的处理目的 / unknown purpose",
                details={"purposes": sorted(p.value for p in Purpose)},
            ) from None
        unknown = [f for f in fields if f not in PI_FIELDS]
        if unknown or not fields:
            raise InvalidInput(
                "未知字段 / unknown or no fields", details={"fields": sorted(PI_FIELDS)}
            )
        person = await self.active_person(person_id, actor.org_id)
        return {f: await self.open_field(person, f, stated, actor) for f in fields}

    async def open_field(
        self, person: Person, column: str, purpose: Purpose, actor: Actor
    ) -> str | None:
        sealed = getattr(person, column)
        if sealed is None:
            return None
        return await self._vault.open(
            self._session,
            PI_FIELDS[column],
            person.subject_id,
            person.id,
            sealed,
            purpose=purpose,
            actor=actor.actor,
            org_id=actor.org_id,
        )

    # --- correction and deletion -----------------------------------------------------------
    async def correct(self, actor: Actor, person: Person, changes: dict[str, str | None]) -> None:
        """Replace contact fields (N4: the current value is kept, the old one is gone). Name and
        document number change only through a new verified registration."""
        bad = [f for f in changes if f not in CORRECTABLE]
        if bad or not changes:
            raise InvalidInput(
                "只能更正联系电话、邮箱和地址 / only phone, email and address can be corrected; "
                "name and document changes need a new verified registration",
                details={"correctable": list(CORRECTABLE)},
            )
        if person.status != "active":
            raise PersonDeleted("此人的信息已删除 / this person's data was deleted")
        values = clean_contacts(changes.get("phone"), changes.get("email"), changes.get("address"))
        cleared = [f for f, v in changes.items() if not v]
        await self.seal_into(person, values)
        if cleared:
            masked = json.loads(person.masked)
            for column in cleared:
                setattr(person, column, None)
                masked.pop(column, None)
                if column == "phone":
                    person.phone_index = None
            person.masked = json.dumps(masked, ensure_ascii=False, sort_keys=True)
        person.updated_at = self._platform.clock.now()
        await self._session.flush()
        await self._audit.record(
            self._session,
            action="people.corrected",
            actor=actor.actor,
            org_id=actor.org_id,
            target=f"subject:{person.subject_id}",
            details={"fields": ",".join(sorted(changes)), "person_id": person.id},
        )

    async def delete(self, actor: Actor, person: Person, reason: str) -> None:
        """Crypto-shred the person's data: keys destroyed, indexes and masks dropped, the row
        kept as a tombstone (ids and dates only), every access link revoked; audited."""
        if reason not in DELETION_REASONS:
            raise InvalidInput("删除原因无效 / invalid deletion reason")
        if person.status != "active":
            raise PersonDeleted("此人的信息已删除 / this person's data was deleted")
        await self._vault.shred_subject(
            self._session, person.subject_id, actor.actor, org_id=actor.org_id
        )
        for column in PI_FIELDS:
            setattr(person, column, None)
        now = self._platform.clock.now()
        person.document_index = None
        person.phone_index = None
        person.masked = "{}"
        person.status = "deleted"
        person.deleted_at = person.updated_at = now
        await self._session.flush()
        await self._repo.revoke_links(person.id)
        await self._audit.record(
            self._session,
            action="people.deleted",
            actor=actor.actor,
            org_id=actor.org_id,
            target=f"subject:{person.subject_id}",
            details={"reason": reason, "person_id": person.id},
        )
