"""Consent test helpers: the notices a hotel publishes, and recording consent in a boundary."""

from __future__ import annotations

from typing import Any

from anju.consent.models import ConsentEvent, Notice
from anju.consent.notices import NoticeContent, build_content
from anju.consent.service import ConsentService
from anju.platform import Platform

ORG = "org-hotel-a"
OTHER_ORG = "org-hotel-b"
CLERK = "account:clerk-1"


def privacy_policy(text_zh: str = "我们为实名登记处理您的姓名和证件号码。") -> NoticeContent:
    """A privacy policy: identity verification required, guest contact optional."""
    return build_content(
        "privacy_policy",
        title_zh="隐私政策",
        title_en="Privacy policy",
        text_zh=text_zh,
        text_en="We process your name and ID number for real-name registration.",
        items=[
            ("identity_verification", ["name", "identity_number"], True),
            ("guest_contact", ["phone", "email"], False),
        ],
    )


def face_notice(text_zh: str = "人脸信息仅用于开锁，退房即删除。") -> NoticeContent:
    """The separate face-recognition notice (optional: a card or passcode also opens)."""
    return build_content(
        "face_recognition",
        title_zh="人脸识别单独同意",
        title_en="Face recognition (separate consent)",
        text_zh=text_zh,
        text_en="Your face template is used only to unlock and is deleted at check-out.",
        items=[
            ("identity_verification", ["biometric_template"], False),
            ("lock_credential_issue", ["biometric_template"], False),
        ],
    )


async def publish(platform: Platform, content: NoticeContent, org: str = ORG) -> Notice:
    async with platform.db.transaction() as session:
        return await ConsentService(platform, session).publish(org, "account:dpo", content)


async def record(platform: Platform, org: str = ORG, **fields: Any) -> ConsentEvent:
    """One consent event recorded by the clerk (channel kiosk unless told)."""
    fields.setdefault("channel", "kiosk")
    async with platform.db.transaction() as session:
        return await ConsentService(platform, session).record(org, CLERK, **fields)
