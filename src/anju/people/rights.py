"""Rights of the person: see and export what is held, correct it, have it deleted, and see who
accessed it on what basis.

How the person is authenticated: there are no guest accounts. A front-desk clerk (who has just
seen the person and their document) issues a **subject access link**: a 256-bit random token,
valid for 30 minutes, of which only the SM3 hash is stored; the person opens it on their phone.
Whoever holds the link acts as ``person:<id>`` for that one person only. Staff acting on a
person's verified request use their own accounts instead (data operator: correction, deletion).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import AuditLog
from anju.audit.encoding import time_text
from anju.errors import InvalidInput, Unauthenticated
from anju.kit.crypto import random_bytes, sm3
from anju.people.application import PI_FIELDS
from anju.people.models import Person, SubjectAccessLink
from anju.people.repository import PeopleRepository
from anju.people.service import Actor, PeopleService, view_of
from anju.people.verification.statement import SIGNER_ID, VERIFICATION_SIGNER
from anju.platform import Platform
from anju.privacy.inventory import Purpose

LINK_PREFIX = "anjup_"
LINK_TTL = timedelta(minutes=30)
MAX_LINK_TTL = timedelta(hours=24)
MAX_TRAIL = 1000
#: The trail entry an officer query leaves on each person it touched (anju.officers).
OFFICER_QUERY_ACTION = "officers.query_subject"


@dataclass(frozen=True)
class IssuedLink:
    token: str  # shown once, to be handed to the person
    link_id: str
    expires_at: datetime


def link_hash(token: str) -> bytes:
    return sm3(token.encode("utf-8"))


def subject_actor(person: Person) -> Actor:
    """The person acting on their own data through an access link."""
    return Actor(f"person:{person.id}", person.org_id)


class SubjectRights:
    """Access links, export, access trail, self-service correction and deletion."""

    def __init__(self, platform: Platform, session: AsyncSession) -> None:
        self._platform = platform
        self._session = session
        self._repo = PeopleRepository(session)
        self._people = PeopleService(platform, session)
        self._audit = AuditLog(platform)

    async def issue_link(
        self, actor: Actor, person_id: str, ttl: timedelta = LINK_TTL
    ) -> IssuedLink:
        """A new access link for the person (the clerk has checked who they hand it to)."""
        if not timedelta(minutes=1) <= ttl <= MAX_LINK_TTL:
            raise InvalidInput("链接有效期须为 1 分钟到 24 小时 / link lifetime 1 minute to 24 h")
        person = await self._people.active_person(person_id, actor.org_id)
        token = LINK_PREFIX + base64.urlsafe_b64encode(random_bytes(32)).decode().rstrip("=")
        now = self._platform.clock.now()
        link = SubjectAccessLink(
            id=random_bytes(16).hex(),
            token_hash=link_hash(token),
            person_id=person.id,
            issued_by=actor.actor,
            issued_at=now,
            expires_at=now + ttl,
            revoked=False,
        )
        await self._repo.add(link)
        await self._audit.record(
            self._session,
            action="people.access_link_issued",
            actor=actor.actor,
            org_id=actor.org_id,
            target=f"subject:{person.subject_id}",
            details={"link_id": link.id, "expires_at": time_text(link.expires_at)},
        )
        return IssuedLink(token, link.id, link.expires_at)

    async def person_for_link(self, token: str) -> Person:
        """The person a valid link belongs to; ``unauthenticated`` for any bad link."""
        link = None
        if token.startswith(LINK_PREFIX) and len(token) <= 100:
            link = await self._repo.link_by_hash(link_hash(token))
        if link is None or link.revoked or link.expires_at <= self._platform.clock.now():
            raise Unauthenticated("访问链接无效或已过期 / the access link is invalid or expired")
        person = await self._repo.person(link.person_id)
        if person is None or person.status != "active":
            raise Unauthenticated("访问链接无效或已过期 / the access link is invalid or expired")
        return person

    async def export(self, person: Person) -> dict[str, Any]:
        """Everything held about the person, decrypted for them (purpose ``subject_access``,
        each decryption audited), with their verification records and access trail."""
        actor = subject_actor(person)
        data = {
            column: await self._people.open_field(person, column, Purpose.SUBJECT_ACCESS, actor)
            for column in PI_FIELDS
            if getattr(person, column) is not None
        }
        verifications = [
            {
                "id": v.id,
                "method": v.method,
                "outcome": v.outcome,
                "at": time_text(v.at),
                "statement": json.loads(v.statement),
                "signature": base64.b64encode(v.signature).decode("ascii"),
            }
            for v in await self._repo.verifications_of(person.subject_id)
        ]
        await self._audit.record(
            self._session,
            action="people.exported",
            actor=actor.actor,
            org_id=actor.org_id,
            target=f"subject:{person.subject_id}",
            details={"person_id": person.id, "purpose": Purpose.SUBJECT_ACCESS.value},
        )
        trail = await self.trail(person, limit=None)
        return {
            "format": "anju-subject-export/1",
            "exported_at": time_text(self._platform.clock.now()),
            "person": {**view_of(person).as_dict(), "registered_at": time_text(person.created_at)},
            "data": data,
            "verifications": verifications,
            "verification_public_key": self._platform.keys.signer(
                VERIFICATION_SIGNER
            ).public_key.to_pem(),
            "verification_signer_id": SIGNER_ID.decode(),
            "access_trail": trail,
            "officer_queries": [e for e in trail if e["action"] == OFFICER_QUERY_ACTION],
        }

    async def trail(self, person: Person, limit: int | None = MAX_TRAIL) -> list[dict[str, Any]]:
        """Who did what with the person's data, when, on what basis (newest first); the trail
        endpoints show the newest ``MAX_TRAIL``, the export carries all of it."""
        rows = await self._repo.trail(person.subject_id, person.id, limit=limit)
        out = []
        for row in rows:
            details = json.loads(row.details) or {}
            out.append(
                {
                    "index": int(row.leaf_index),
                    "at": time_text(row.recorded_at),
                    "actor": row.actor,
                    "action": row.action,
                    "outcome": row.outcome,
                    "purpose": details.get("purpose"),
                    "field": details.get("field"),
                    # officer queries: the legal basis type (never the case number or reason)
                    "basis": details.get("basis"),
                }
            )
        return out
