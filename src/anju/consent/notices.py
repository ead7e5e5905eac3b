"""The vocabulary of notices: kinds, the purposes a notice covers, content hashing.

A notice says which purposes (:class:`anju.privacy.inventory.Purpose`) it asks consent for, the
PI categories each purpose uses, and whether the purpose is required for the service or
optional (refusing an optional one disables only that feature, L4). Face recognition and other
sensitive PI have their own notice kinds: their consent is always *separate* (L4, PIPL art. 29).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from anju.errors import InvalidInput
from anju.kit.crypto import sm3
from anju.privacy.inventory import Category, Purpose

MAX_TITLE = 200
MAX_TEXT = 64 * 1024
MAX_ITEMS = 32


class NoticeKind(StrEnum):
    """Kinds of notice (GB/T 42574; seed 000 §5.1–5.3)."""

    PRIVACY_POLICY = "privacy_policy"
    USER_AGREEMENT = "user_agreement"
    FACE_RECOGNITION = "face_recognition"
    SENSITIVE_PI = "sensitive_pi"
    REGULATOR_REPORTING = "regulator_reporting"


NOTICE_KIND_LABELS: dict[NoticeKind, tuple[str, str]] = {
    NoticeKind.PRIVACY_POLICY: ("隐私政策", "privacy policy"),
    NoticeKind.USER_AGREEMENT: ("用户协议", "user agreement"),
    NoticeKind.FACE_RECOGNITION: ("人脸识别单独同意", "separate consent to face recognition"),
    NoticeKind.SENSITIVE_PI: ("敏感个人信息单独同意", "separate consent to sensitive PI"),
    NoticeKind.REGULATOR_REPORTING: ("向公安机关报送告知", "notice of reporting to the regulator"),
}

#: Kinds whose consent is a separate consent (L4: face recognition and each sensitive permission).
SEPARATE_KINDS = frozenset({NoticeKind.FACE_RECOGNITION, NoticeKind.SENSITIVE_PI})


class ConsentAction(StrEnum):
    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class Channel(StrEnum):
    """How the person gave, refused or withdrew consent."""

    KIOSK = "kiosk"
    APP = "app"
    FRONT_DESK = "front_desk"
    PAPER = "paper"


@dataclass(frozen=True)
class NoticeItem:
    """One purpose a notice covers, the PI categories it uses, and whether it is required."""

    purpose: Purpose
    categories: tuple[Category, ...]
    required: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose.value,
            "categories": [c.value for c in self.categories],
            "required": self.required,
        }


@dataclass(frozen=True)
class NoticeContent:
    """What a notice says: titles and texts in zh-CN and English, and the purposes it covers."""

    kind: NoticeKind
    title_zh: str
    title_en: str
    text_zh: str
    text_en: str
    items: tuple[NoticeItem, ...]

    def canonical(self) -> bytes:
        """The canonical bytes the content hash is taken over."""
        body = {
            "format": "anju-notice/1",
            "kind": self.kind.value,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "text_zh": self.text_zh,
            "text_en": self.text_en,
            "items": [item.as_dict() for item in self.items],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def content_hash(self) -> bytes:
        """SM3 of the canonical content (recorded in every consent event and receipt)."""
        return sm3(self.canonical())

    def item(self, purpose: str) -> NoticeItem | None:
        return next((i for i in self.items if i.purpose.value == purpose), None)


def _text(value: str, name: str, limit: int) -> str:
    if not value.strip() or len(value) > limit or "\x00" in value:
        raise InvalidInput(
            f"{name} 须为 1–{limit} 个字符 / {name} must be 1–{limit} characters",
            details={"field": name},
        )
    return value


def build_content(
    kind: str,
    *,
    title_zh: str,
    title_en: str,
    text_zh: str,
    text_en: str,
    items: Sequence[tuple[str, Sequence[str], bool]],
) -> NoticeContent:
    """Validated notice content; ``InvalidInput`` (with the offending field) otherwise."""
    notice_kind = parse_kind(kind)
    if not 0 < len(items) <= MAX_ITEMS:
        raise InvalidInput(
            f"告知须列出 1–{MAX_ITEMS} 个目的 / a notice lists 1–{MAX_ITEMS} purposes",
            details={"field": "items"},
        )
    parsed: list[NoticeItem] = []
    for purpose, categories, required in items:
        item = NoticeItem(parse_purpose(purpose), _categories(categories), bool(required))
        if any(p.purpose is item.purpose for p in parsed):
            raise InvalidInput(
                "同一目的重复 / a purpose is listed twice", details={"purpose": purpose}
            )
        _check_separate(notice_kind, item)
        parsed.append(item)
    return NoticeContent(
        notice_kind,
        _text(title_zh, "title_zh", MAX_TITLE),
        _text(title_en, "title_en", MAX_TITLE),
        _text(text_zh, "text_zh", MAX_TEXT),
        _text(text_en, "text_en", MAX_TEXT),
        tuple(parsed),
    )


def _check_separate(kind: NoticeKind, item: NoticeItem) -> None:
    """Face templates are asked for only by a face-recognition notice, and it asks for nothing
    else: a separate consent cannot be bundled into a general one (L4)."""
    face = Category.BIOMETRIC_TEMPLATE in item.categories
    if face != (kind is NoticeKind.FACE_RECOGNITION):
        raise InvalidInput(
            "人脸信息须单独告知同意 / face templates need their own face_recognition notice, "
            "which covers nothing else",
            details={"purpose": item.purpose.value, "kind": kind.value},
        )


def _categories(values: Sequence[str]) -> tuple[Category, ...]:
    if not 0 < len(values) <= len(Category) or len(set(values)) != len(values):
        raise InvalidInput(
            "每个目的须列出不重复的个人信息类别 / each purpose lists distinct PI categories",
            details={"field": "categories"},
        )
    out = []
    for value in values:
        try:
            out.append(Category(value))
        except ValueError:
            raise InvalidInput(
                f"未知个人信息类别 / unknown PI category {value[:40]!r}",
                details={"known": sorted(c.value for c in Category)},
            ) from None
    return tuple(out)


def parse_kind(value: str) -> NoticeKind:
    """The notice kind called ``value``; ``InvalidInput`` listing the known ones."""
    try:
        return NoticeKind(value)
    except ValueError:
        raise InvalidInput(
            f"未知告知类型 / unknown notice kind {value[:40]!r}",
            details={"known": sorted(k.value for k in NoticeKind)},
        ) from None


def parse_purpose(value: str) -> Purpose:
    """The purpose called ``value``; ``InvalidInput`` listing the known ones."""
    try:
        return Purpose(value)
    except ValueError:
        raise InvalidInput(
            f"未知目的 / unknown purpose {value[:40]!r}",
            details={"known": sorted(p.value for p in Purpose)},
        ) from None


def items_from_json(text: str) -> tuple[NoticeItem, ...]:
    """The items of a stored notice."""
    return tuple(
        NoticeItem(
            Purpose(raw["purpose"]),
            tuple(Category(c) for c in raw["categories"]),
            bool(raw["required"]),
        )
        for raw in json.loads(text)
    )


def items_to_json(items: Sequence[NoticeItem]) -> str:
    return json.dumps([i.as_dict() for i in items], sort_keys=True, separators=(",", ":"))
