"""Every error code the platform can answer with is documented (docs/api.md and the domain
pages), so clients can branch on it."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import anju
from anju.errors import AnjuError

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: Device software and the wire codec raise errors on the lock, never in an HTTP answer.
DEVICE_SIDE = ("anju.device.", "anju.protocol.", "anju.migrations.")


def _error_classes() -> Iterator[type[AnjuError]]:
    for module in pkgutil.walk_packages(anju.__path__, "anju."):
        if not module.name.startswith(DEVICE_SIDE):
            importlib.import_module(module.name)
    pending: list[type[AnjuError]] = [AnjuError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.__module__.startswith(DEVICE_SIDE):
            yield cls


@pytest.mark.req("R16", "R17")
def test_every_platform_error_code_is_documented() -> None:
    docs = "\n".join(path.read_text(encoding="utf-8") for path in DOCS.glob("*.md"))
    codes = {cls.code for cls in _error_classes()}
    assert {"access_conflict", "credential_unsupported", "lock_key_unavailable"} <= codes
    missing = sorted(code for code in codes if f"`{code}`" not in docs)
    assert missing == []
