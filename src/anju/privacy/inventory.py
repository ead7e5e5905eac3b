"""The PI inventory's vocabulary and renderers; the declarations themselves are in ``fields.py``.

Each personal-information field anju stores is declared once as a :class:`PIField`: where it
lives, what category (seed 000 §4.1, L2) and sensitivity (GB/T 35273) it has, the purposes that
may decrypt it (L11), how long it is kept (L10), how it is shown (masking) and whether it has a
blind index. The vault, the docs and the "no PI in clear" tests all read this one declaration.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from anju.errors import NotFound
from anju.kit.blind_index import Normaliser
from anju.kit.masking import MaskRule


class Category(StrEnum):
    """PI categories in scope (seed 000 §4.1)."""

    NAME = "name"
    IDENTITY_NUMBER = "identity_number"
    PHONE = "phone"
    EMAIL = "email"
    ADDRESS = "address"
    BIOMETRIC_TEMPLATE = "biometric_template"
    NETWORK_IDENTIFIER = "network_identifier"
    CTID_CREDENTIAL = "ctid_credential"
    FREE_TEXT = "free_text"


CATEGORY_LABELS: dict[Category, tuple[str, str]] = {
    Category.NAME: ("姓名", "name"),
    Category.IDENTITY_NUMBER: ("身份证件号码", "identity document number"),
    Category.PHONE: ("手机号码", "phone number"),
    Category.EMAIL: ("电子邮箱", "email address"),
    Category.ADDRESS: ("地址", "address"),
    Category.BIOMETRIC_TEMPLATE: ("生物特征模板", "biometric template"),
    Category.NETWORK_IDENTIFIER: ("网络身份标识", "network identifier"),
    Category.CTID_CREDENTIAL: ("网证凭据(CTID)", "CTID credential"),
    Category.FREE_TEXT: ("自由文本（可能含个人信息）", "free text (may hold personal information)"),
}


class Sensitivity(StrEnum):
    """GB/T 35273: sensitive PI needs separate consent and stricter handling."""

    SENSITIVE = "sensitive"
    GENERAL = "general"


SENSITIVITY_LABELS = {
    Sensitivity.SENSITIVE: ("敏感个人信息", "sensitive"),
    Sensitivity.GENERAL: ("一般个人信息", "general"),
}


class Purpose(StrEnum):
    """Why someone may decrypt a PI field; every decryption records one (L11)."""

    IDENTITY_VERIFICATION = "identity_verification"
    REGULATOR_REPORT = "regulator_report"
    LOCK_CREDENTIAL_ISSUE = "lock_credential_issue"
    GUEST_CONTACT = "guest_contact"
    LAWFUL_REQUEST = "lawful_request"
    SUBJECT_ACCESS = "subject_access"
    SERVICE_REQUEST = "service_request"


PURPOSE_LABELS = {
    Purpose.IDENTITY_VERIFICATION: ("实名核验", "identity verification"),
    Purpose.REGULATOR_REPORT: ("治安管理信息上报", "report to the public-security regulator"),
    Purpose.LOCK_CREDENTIAL_ISSUE: ("门锁凭证下发", "issuing lock credentials"),
    Purpose.GUEST_CONTACT: ("联系住客", "contacting the guest / tenant"),
    Purpose.LAWFUL_REQUEST: ("依法调取", "lawful request by an authority"),
    Purpose.SUBJECT_ACCESS: ("本人查阅", "access by the data subject"),
    Purpose.SERVICE_REQUEST: ("处理报修与反馈", "handling the person's repair request or feedback"),
}


class RetentionAnchor(StrEnum):
    """The event a retention period counts from."""

    CHECK_OUT = "check_out"
    ACCOUNT_CLOSED = "account_closed"
    VERIFICATION_DONE = "verification_done"


@dataclass(frozen=True)
class Retention:
    """How long a field is kept: ``days`` after ``anchor`` (machine), and the same in words."""

    anchor: RetentionAnchor
    days: int
    text_zh: str
    text_en: str

    @property
    def iso_duration(self) -> str:
        """ISO 8601 duration of the period, e.g. ``P30D``."""
        return f"P{self.days}D"


@dataclass(frozen=True)
class PIField:
    """One declared PI field."""

    name: str
    table: str
    column: str
    category: Category
    sensitivity: Sensitivity
    purposes: frozenset[Purpose]
    retention: Retention
    masking: MaskRule
    blind_index: Normaliser | None  # the normaliser when the field has a blind index
    description_zh: str
    description_en: str

    def allows(self, purpose: str) -> bool:
        """Whether ``purpose`` is one this field may be decrypted for."""
        return purpose in self.purposes

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "table": self.table,
            "column": self.column,
            "category": self.category.value,
            "sensitivity": self.sensitivity.value,
            "purposes": sorted(p.value for p in self.purposes),
            "retention": {
                "anchor": self.retention.anchor.value,
                "duration": self.retention.iso_duration,
                "days": self.retention.days,
                "text_zh": self.retention.text_zh,
                "text_en": self.retention.text_en,
            },
            "masking": self.masking,
            "blind_index": self.blind_index,
            "description_zh": self.description_zh,
            "description_en": self.description_en,
        }


class Inventory:
    """The declared PI fields, looked up by name."""

    def __init__(self, fields: Iterable[PIField]) -> None:
        self._fields: dict[str, PIField] = {}
        places: set[tuple[str, str]] = set()
        for item in fields:
            if item.name in self._fields:
                raise ValueError(f"PI field {item.name!r} declared twice")
            if (item.table, item.column) in places:
                raise ValueError(f"column {item.table}.{item.column} declared twice")
            if not item.purposes:
                raise ValueError(f"PI field {item.name!r} has no purpose")
            self._fields[item.name] = item
            places.add((item.table, item.column))

    def __iter__(self) -> Iterator[PIField]:
        return iter(self._fields.values())

    def __len__(self) -> int:
        return len(self._fields)

    def get(self, name: str) -> PIField:
        """The field called ``name``; ``NotFound`` if it was never declared."""
        try:
            return self._fields[name]
        except KeyError:
            raise NotFound(f"未声明的个人信息字段 / undeclared PI field: {name}") from None

    def render_json(self) -> str:
        """The inventory as JSON (stable order)."""
        return json.dumps([f.as_dict() for f in self], ensure_ascii=False, indent=2) + "\n"

    def render_table(self) -> str:
        """A plain-text table for terminals."""
        headers = ("field", "table.column", "category", "sensitivity", "retention", "mask", "index")
        rows = [
            (
                f.name,
                f"{f.table}.{f.column}",
                f.category.value,
                f.sensitivity.value,
                f"{f.retention.iso_duration} after {f.retention.anchor.value}",
                f.masking,
                f.blind_index or "-",
            )
            for f in self
        ]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
        return "\n".join(line.rstrip() for line in lines) + "\n"

    def render_markdown(self) -> str:
        """docs/privacy.md: the inventory in zh-CN with English alongside."""
        out = [
            "# 个人信息清单 / Personal information inventory",
            "",
            "<!-- 本文件由代码生成，请勿手工编辑 / generated from src/anju/privacy/fields.py by "
            "`anju privacy inventory --format markdown`; do not edit by hand -->",
            "",
            "每个个人信息字段只在 `src/anju/privacy/fields.py` 中声明一次；加密存储、解密目的校验、"
            "脱敏显示和本文件都来自该声明。",
            "Every PI field is declared once in `src/anju/privacy/fields.py`; encryption at rest, "
            "purpose checks on decryption, masked display and this page all come from it.",
            "",
            "所有字段均以 SM4-GCM 按数据主体密钥加密存储（信封加密），"
            "每次解密都写入审计日志并注明目的。",
            "All fields are stored SM4-GCM encrypted under the data subject's own key (envelope "
            "encryption); every decryption is written to the audit log with its purpose.",
            "",
            "## 概览 / Overview",
            "",
            "| 字段 Field | 位置 Table.column | 类别 Category | 敏感性 Sensitivity | "
            "保存期限 Retention | 脱敏 Masking | 盲索引 Blind index |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in self:
            cat_zh, cat_en = CATEGORY_LABELS[f.category]
            sens_zh, sens_en = SENSITIVITY_LABELS[f.sensitivity]
            out.append(
                f"| `{f.name}` | `{f.table}.{f.column}` | {cat_zh} {cat_en} | "
                f"{sens_zh} {sens_en} | "
                f"{f.retention.text_zh} / {f.retention.text_en} (`{f.retention.iso_duration}`) | "
                f"`{f.masking}` | {('`' + f.blind_index + '`') if f.blind_index else '—'} |"
            )
        out += ["", "## 字段说明 / Fields", ""]
        for f in self:
            out.append(f"### `{f.name}`")
            out.append("")
            out.append(f"{f.description_zh} / {f.description_en}")
            out.append("")
            out.append("允许的解密目的 / Purposes allowed to decrypt:")
            out.append("")
            for purpose in sorted(f.purposes, key=lambda p: p.value):
                zh, en = PURPOSE_LABELS[purpose]
                out.append(f"- `{purpose.value}` — {zh} / {en}")
            out.append("")
        out += ["## 目的 / Purposes", ""]
        for purpose, (zh, en) in PURPOSE_LABELS.items():
            out.append(f"- `{purpose.value}` — {zh} / {en}")
        out.append("")
        return "\n".join(out)
