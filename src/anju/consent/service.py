"""Notice and consent rules: publish notices, record consent events with signed receipts, answer
"may purpose P be used for subject S now?", and run withdrawal hooks. The caller commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import AuditLog
from anju.consent.hooks import Withdrawal, WithdrawalHooks, standard_hooks
from anju.consent.models import ConsentEvent, Notice
from anju.consent.notices import (
    SEPARATE_KINDS,
    ConsentAction,
    NoticeContent,
    NoticeKind,
    items_from_json,
    items_to_json,
    parse_kind,
    parse_purpose,
)
from anju.consent.receipts import CONSENT_SIGNER, RECEIPT_FORMAT, canonical
from anju.consent.repository import ConsentRepository
from anju.consent.rules import (
    PRECEDENCE,
    ConsentCheck,
    ConsentStatus,
    NothingToWithdraw,
    NoticeAnswer,
    NoticeOutdated,
    NoticeUnchanged,
    PurposeNotInNotice,
    UnknownNoticeVersion,
    check_subject_id,
    concurrent_change,
    parse_action,
    parse_channel,
    status_of,
)
from anju.errors import InvalidInput, NotFound
from anju.kit.crypto import SM2PublicKey, random_bytes
from anju.platform import Platform
from anju.privacy.inventory import Category


class ConsentService:
    """Notices and consent events of one organisation at a time, in one session."""

    def __init__(
        self, platform: Platform, session: AsyncSession, *, hooks: WithdrawalHooks | None = None
    ) -> None:
        self._platform = platform
        self._session = session
        self._repo = ConsentRepository(session)
        self._audit = AuditLog(platform)
        self._hooks = hooks if hooks is not None else standard_hooks()

    # --- notices ---------------------------------------------------------------------------
    async def publish(self, org_id: str, actor: str, content: NoticeContent) -> Notice:
        """Publish ``content`` as the next version of its kind; earlier consents become stale."""
        latest = await self._repo.latest_notice(org_id, content.kind.value, for_update=True)
        digest = content.content_hash()
        if latest is not None and bytes(latest.content_hash) == digest:
            raise NoticeUnchanged(
                "告知内容未变化 / the notice text is unchanged: no new version published",
                details={"kind": content.kind.value, "version": latest.version},
            )
        notice = Notice(
            id=random_bytes(16).hex(),
            org_id=org_id,
            kind=content.kind.value,
            version=1 if latest is None else latest.version + 1,
            title_zh=content.title_zh,
            title_en=content.title_en,
            text_zh=content.text_zh,
            text_en=content.text_en,
            items=items_to_json(content.items),
            content_hash=digest,
            published_at=self._platform.clock.now(),
            published_by=actor,
        )
        if not await self._repo.add(notice):
            raise concurrent_change()
        await self._audit.record(
            self._session,
            action="consent.notice_published",
            actor=actor,
            org_id=org_id,
            target=f"notice:{notice.kind}",
            details={"kind": notice.kind, "version": notice.version, "hash": digest.hex()},
        )
        return notice

    async def current_notices(self, org_id: str) -> list[Notice]:
        return list(await self._repo.current_notices(org_id))

    async def notice(self, org_id: str, kind: str, version: int | None = None) -> Notice:
        """A published version (the current one when ``version`` is None)."""
        parse_kind(kind)
        row = (
            await self._repo.latest_notice(org_id, kind)
            if version is None
            else await self._repo.notice_version(org_id, kind, version)
        )
        if row is None:
            raise UnknownNoticeVersion(
                "没有该版本的告知 / no such notice version",
                details={"kind": kind, "version": version},
            )
        return row

    # --- events ----------------------------------------------------------------------------
    async def record(
        self,
        org_id: str,
        actor: str,
        *,
        subject_id: str,
        kind: str,
        version: int,
        purpose: str,
        action: str,
        channel: str,
    ) -> ConsentEvent:
        """Append one consent event (with its signed receipt); a withdrawal runs the hooks."""
        check_subject_id(subject_id)
        act = parse_action(action)
        how = parse_channel(channel)
        parse_purpose(purpose)
        notice = await self.notice(org_id, kind, version)
        current = await self._repo.latest_notice(org_id, kind)
        assert current is not None
        if act is not ConsentAction.WITHDRAWN and notice.version != current.version:
            raise NoticeOutdated(
                "只能对现行版本的告知表示同意或拒绝 / consent is given or refused to the notice "
                "version in force only",
                details={"kind": kind, "version": version, "current": current.version},
            )
        if purpose not in {i.purpose.value for i in items_from_json(notice.items)}:
            raise PurposeNotInNotice(
                "该告知不涉及此目的 / the notice does not cover this purpose",
                details={"kind": kind, "version": version, "purpose": purpose},
            )
        if act is ConsentAction.WITHDRAWN:
            last = await self._repo.latest_event(org_id, subject_id, kind, purpose)
            if last is None or last.action != ConsentAction.GIVEN:
                raise NothingToWithdraw(
                    "没有可撤回的同意 / there is no consent in force to withdraw",
                    details={"kind": kind, "purpose": purpose},
                )
        event = ConsentEvent(
            id=random_bytes(16).hex(),
            seq=await self._repo.next_seq(org_id, subject_id),
            org_id=org_id,
            subject_id=subject_id,
            notice_id=notice.id,
            notice_kind=notice.kind,
            notice_version=notice.version,
            notice_hash=bytes(notice.content_hash),
            purpose=purpose,
            action=act.value,
            separate=NoticeKind(notice.kind) in SEPARATE_KINDS,
            channel=how.value,
            actor=actor,
            at=self._platform.clock.now(),
            signature=b"",
        )
        event.signature = self._signer().sign(canonical(self.receipt_body(event)))
        if not await self._repo.add(event):
            raise concurrent_change()
        await self._audit.record(
            self._session,
            action=f"consent.{act.value}",
            actor=actor,
            org_id=org_id,
            target=f"subject:{subject_id}",
            details={
                "event": event.id,
                "kind": event.notice_kind,
                "version": event.notice_version,
                "purpose": purpose,
                "channel": how.value,
                "separate": event.separate,
            },
        )
        if act is ConsentAction.WITHDRAWN:
            await self._hooks.run(
                Withdrawal(
                    self._platform,
                    self._session,
                    org_id,
                    subject_id,
                    NoticeKind(kind),
                    purpose,
                    actor,
                )
            )
        return event

    async def withdraw_all(
        self, org_id: str, actor: str, subject_id: str, channel: str
    ) -> list[ConsentEvent]:
        """Withdraw every consent in force of the subject (account closure)."""
        check_subject_id(subject_id)
        events = []
        for kind, purpose in sorted(await self._repo.given_purposes(org_id, subject_id)):
            last = await self._repo.latest_event(org_id, subject_id, kind, purpose)
            if last is None or last.action != ConsentAction.GIVEN:
                continue
            events.append(
                await self.record(
                    org_id,
                    actor,
                    subject_id=subject_id,
                    kind=kind,
                    version=last.notice_version,
                    purpose=purpose,
                    action=ConsentAction.WITHDRAWN.value,
                    channel=channel,
                )
            )
        return events

    async def events(self, org_id: str, subject_id: str) -> list[ConsentEvent]:
        return list(await self._repo.events_of(org_id, check_subject_id(subject_id)))

    async def event(self, org_id: str, event_id: str) -> ConsentEvent:
        row = await self._repo.event(org_id, event_id)
        if row is None:
            raise NotFound("没有该同意记录 / no such consent event")
        return row

    async def subject_known(self, org_id: str, subject_id: str) -> bool:
        return await self._repo.subject_known(org_id, check_subject_id(subject_id))

    # --- the check -------------------------------------------------------------------------
    async def check(
        self, org_id: str, subject_id: str, purpose: str, category: str | None = None
    ) -> ConsentCheck:
        """May ``purpose`` (using ``category`` when given) be used for the subject now?"""
        check_subject_id(subject_id)
        parse_purpose(purpose)
        if category is not None:
            try:
                Category(category)
            except ValueError:
                raise InvalidInput(
                    f"未知个人信息类别 / unknown PI category {category[:40]!r}"
                ) from None
        answers: list[NoticeAnswer] = []
        for notice in await self._repo.current_notices(org_id):
            item = next(
                (i for i in items_from_json(notice.items) if i.purpose.value == purpose), None
            )
            if item is None or (category is not None and category not in item.categories):
                continue
            last = await self._repo.latest_event(org_id, subject_id, notice.kind, purpose)
            answers.append(
                NoticeAnswer(
                    notice.kind,
                    notice.version,
                    item.required,
                    status_of(last, notice.version),
                    None if last is None else last.notice_version,
                )
            )
        if not answers:
            return ConsentCheck(subject_id, purpose, category, ConsentStatus.NO_NOTICE)
        worst = min((a.status for a in answers), key=PRECEDENCE.index)
        return ConsentCheck(subject_id, purpose, category, worst, answers)

    async def overview(self, org_id: str, subject_id: str) -> list[ConsentCheck]:
        """Every purpose of every notice in force with the subject's answer: what a privacy
        settings page shows, each optional one withdrawable on its own (L4)."""
        purposes = sorted(
            {
                item.purpose.value
                for notice in await self._repo.current_notices(org_id)
                for item in items_from_json(notice.items)
            }
        )
        return [await self.check(org_id, subject_id, purpose) for purpose in purposes]

    # --- receipts --------------------------------------------------------------------------
    def _signer(self) -> Any:
        return self._platform.keys.signer(CONSENT_SIGNER)

    def public_key(self) -> SM2PublicKey:
        """The key consent receipts verify with."""
        key: SM2PublicKey = self._signer().public_key
        return key

    def receipt_body(self, event: ConsentEvent) -> dict[str, Any]:
        """The signed part of the event's receipt."""
        return {
            "format": RECEIPT_FORMAT,
            "receipt_id": event.id,
            "org_id": event.org_id,
            "subject_id": event.subject_id,
            "notice": {
                "id": event.notice_id,
                "kind": event.notice_kind,
                "version": event.notice_version,
                "hash": bytes(event.notice_hash).hex(),
            },
            "purpose": event.purpose,
            "action": event.action,
            "separate": event.separate,
            "channel": event.channel,
            "actor": event.actor,
            "at": event.at.isoformat(),
            "signer": CONSENT_SIGNER,
            "public_key": self.public_key().raw.hex(),
        }

    def receipt(self, event: ConsentEvent) -> dict[str, Any]:
        """The receipt the person downloads: the body and its SM2 signature."""
        return {"receipt": self.receipt_body(event), "signature": bytes(event.signature).hex()}
