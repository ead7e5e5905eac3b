"""The PI inventory: declared once, complete for L2, rendered to docs/privacy.md without drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anju.cli.main import app
from anju.errors import NotFound
from anju.kit.masking import MASK_RULES
from anju.privacy.fields import INVENTORY
from anju.privacy.inventory import (
    CATEGORY_LABELS,
    PURPOSE_LABELS,
    Category,
    Inventory,
    PIField,
    Sensitivity,
)

pytestmark = pytest.mark.req("L2", "L10", "L11")

DOCS = Path(__file__).resolve().parents[1] / "docs" / "privacy.md"


def test_committed_docs_match_the_generator() -> None:
    assert DOCS.read_text(encoding="utf-8") == INVENTORY.render_markdown(), (
        "docs/privacy.md is stale: run "
        "`.venv/bin/anju privacy inventory --format markdown > docs/privacy.md`"
    )


def test_every_l2_category_that_anju_stores_is_declared() -> None:
    assert {f.category for f in INVENTORY} == set(Category)
    for name in (
        "person.name",
        "person.document_number",
        "person.phone",
        "person.address",
        "biometric.face_template",
        "ctid.credential",
        "ctid.network_identifier",
    ):
        INVENTORY.get(name)


def test_identity_numbers_and_biometrics_are_sensitive() -> None:
    for f in INVENTORY:
        if f.category in {
            Category.IDENTITY_NUMBER,
            Category.BIOMETRIC_TEMPLATE,
            Category.CTID_CREDENTIAL,
        }:
            assert f.sensitivity is Sensitivity.SENSITIVE, f.name


def test_entries_are_complete_and_consistent() -> None:
    for f in INVENTORY:
        assert f.purposes, f.name
        assert f.masking in MASK_RULES, f.name
        assert f.retention.days >= 0
        assert f.retention.iso_duration == f"P{f.retention.days}D"
        assert f.retention.text_zh
        assert f.retention.text_en
        assert f.description_zh
        assert f.description_en
        assert f.category in CATEGORY_LABELS
        assert all(p in PURPOSE_LABELS for p in f.purposes)
    # Templates and credentials are never displayed, not even masked.
    assert INVENTORY.get("biometric.face_template").masking == "hidden"
    assert INVENTORY.get("ctid.credential").masking == "hidden"
    assert INVENTORY.get("person.document_number").blind_index == "id_number"


def test_undeclared_fields_are_not_found() -> None:
    with pytest.raises(NotFound):
        INVENTORY.get("person.favourite_colour")


def test_a_field_or_column_cannot_be_declared_twice() -> None:
    name = INVENTORY.get("person.name")
    with pytest.raises(ValueError, match="declared twice"):
        Inventory([name, name])
    other = PIField(**{**name.__dict__, "name": "person.alias"})
    with pytest.raises(ValueError, match=r"people\.name declared twice"):
        Inventory([name, other])
    with pytest.raises(ValueError, match="no purpose"):
        Inventory([PIField(**{**name.__dict__, "purposes": frozenset()})])


def test_cli_prints_the_inventory_in_three_formats() -> None:
    runner = CliRunner()
    table = runner.invoke(app, ["privacy", "inventory"])
    assert table.exit_code == 0, table.output
    for f in INVENTORY:
        assert f.name in table.output
        assert f"{f.table}.{f.column}" in table.output
    as_json = runner.invoke(app, ["privacy", "inventory", "--format", "json"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.output) == [f.as_dict() for f in INVENTORY]
    markdown = runner.invoke(app, ["privacy", "inventory", "--format", "markdown"])
    assert markdown.output == INVENTORY.render_markdown()
    assert "身份证件号码" in markdown.output
    assert "identity document number" in markdown.output
    bad = runner.invoke(app, ["privacy", "inventory", "--format", "pdf"])
    assert bad.exit_code != 0
