"""Retention policies: for each kind of data, what its period counts from, how many days, and
what the sweep does when it has passed.

PI categories take their defaults from the PI inventory's ``Retention`` declarations (the
shortest one declared for the category). Records that are not PI fields (capture log, consent
records, unlock records) and the subject data keys have their periods here, each with its
source. Settings (``retention_days``) may override a period, never below its legal minimum.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from anju.errors import ConfigurationError, NotFound
from anju.privacy.fields import INVENTORY
from anju.privacy.inventory import CATEGORY_LABELS, Category, PIField, RetentionAnchor

#: Anchor of records kept for a time after they were written (logs).
RECORDED = "recorded"


class SweepAction(StrEnum):
    DELETE = "delete"  # rows deleted
    REVOKE = "revoke"  # sealed value deleted, row kept as a tombstone
    SHRED = "shred"  # the subject's data key destroyed: everything sealed for them unreadable
    NEVER_STORED = "never_stored"  # nothing to sweep: the platform never keeps it


@dataclass(frozen=True)
class RetentionPolicy:
    """How long one kind of data is kept and why."""

    kind: str
    anchor: str  # a RetentionAnchor value, or RECORDED
    days: int
    action: SweepAction
    basis_zh: str
    basis_en: str
    minimum_days: int = 0

    def cutoff(self, now: datetime) -> datetime:
        """Anchors (or records) at or before this instant are due."""
        return now - timedelta(days=self.days)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "anchor": self.anchor,
            "days": self.days,
            "duration": f"P{self.days}D",
            "action": self.action.value,
            "minimum_days": self.minimum_days,
            "basis_zh": self.basis_zh,
            "basis_en": self.basis_en,
        }


SUBJECT_DATA_KEY = "subject_data_key"
PORTRAIT = "portrait"
CAPTURE_LOG = "biometric_capture_log"
CONSENT_RECORD = "consent_record"
UNLOCK_RECORD = "unlock_record"


def _category_policy(category: Category, fields: list[PIField]) -> RetentionPolicy:
    shortest = min(fields, key=lambda f: f.retention.days)
    zh, en = CATEGORY_LABELS[category]
    action = SweepAction.REVOKE if category is Category.BIOMETRIC_TEMPLATE else SweepAction.SHRED
    return RetentionPolicy(
        category.value,
        shortest.retention.anchor.value,
        shortest.retention.days,
        action,
        f"{zh}：{shortest.retention.text_zh}（个人信息清单，L10）",
        f"{en}: {shortest.retention.text_en} (PI inventory, L10)",
    )


def _subject_key_policy(fields: Iterable[PIField]) -> RetentionPolicy:
    # The key protects every field of the subject: it goes once the longest period has passed.
    days = max(f.retention.days for f in fields)
    return RetentionPolicy(
        SUBJECT_DATA_KEY,
        RetentionAnchor.CHECK_OUT.value,
        days,
        SweepAction.SHRED,
        f"数据主体密钥：退房或注销后 {days} 天销毁（最长字段期限），其加密数据随之不可读",
        f"subject data key: destroyed {days} days after check-out or account closure (the "
        "longest field period); everything sealed under it becomes unreadable",
    )


def default_policies() -> dict[str, RetentionPolicy]:
    """The built-in policies, one per kind."""
    by_category: dict[Category, list[PIField]] = {}
    for item in INVENTORY:
        by_category.setdefault(item.category, []).append(item)
    policies = [_category_policy(c, f) for c, f in by_category.items()]
    policies += [
        _subject_key_policy(INVENTORY),
        RetentionPolicy(
            PORTRAIT,
            RECORDED,
            0,
            SweepAction.NEVER_STORED,
            "人像信息不得留存（T/OIDAA 草案 §6.1，L7）：平台从不保存图像",
            "portraits are never retained (seed 000 §6.1, L7): the platform stores no image",
        ),
        RetentionPolicy(
            CAPTURE_LOG,
            RECORDED,
            180,
            SweepAction.DELETE,
            "人脸采集日志保存 180 天（假设：参照《网络安全法》第二十一条网络日志不少于六个月）",
            "face capture log kept 180 days (assumption: Cybersecurity Law art. 21, network "
            "logs at least six months)",
            minimum_days=180,
        ),
        RetentionPolicy(
            CONSENT_RECORD,
            RetentionAnchor.CHECK_OUT.value,
            3 * 365,
            SweepAction.DELETE,
            "同意记录在退房或注销后保存 3 年（假设：参照《个人信息保护法》第五十六条处理情况记录"
            "至少保存三年），以证明取得过同意",
            "consent records kept 3 years after check-out or account closure, to prove consent "
            "(assumption: PIPL art. 56 keeps processing records at least three years)",
            minimum_days=3 * 365,
        ),
        RetentionPolicy(
            UNLOCK_RECORD,
            RECORDED,
            180,
            SweepAction.DELETE,
            "开锁记录保存 180 天（假设：《网络安全法》第二十一条网络日志不少于六个月；"
            "地方治安规定更长时以设置延长）",
            "unlock records kept 180 days (assumption: Cybersecurity Law art. 21, logs at "
            "least six months; extend by setting where a local regulation asks for longer)",
            minimum_days=180,
        ),
    ]
    return {p.kind: p for p in policies}


def resolve_policies(overrides: Mapping[str, int]) -> dict[str, RetentionPolicy]:
    """The defaults with ``overrides`` (days per kind) applied; ConfigurationError if invalid."""
    policies = default_policies()
    for kind, days in overrides.items():
        policy = policies.get(kind)
        if policy is None or policy.action is SweepAction.NEVER_STORED:
            raise ConfigurationError(
                f"retention_days: unknown or fixed kind {kind!r}; known: "
                + ", ".join(k for k, p in policies.items() if p.action != SweepAction.NEVER_STORED)
            )
        if days < policy.minimum_days:
            raise ConfigurationError(
                f"retention_days: {kind} is kept at least {policy.minimum_days} days "
                f"({policy.basis_en}); {days} is too short"
            )
        policies[kind] = replace(policy, days=days)
    return policies


def policy(policies: Mapping[str, RetentionPolicy], kind: str) -> RetentionPolicy:
    try:
        return policies[kind]
    except KeyError:
        raise NotFound(f"没有该保存策略 / no retention policy {kind[:40]!r}") from None
