"""The README is the front door: what it promises about set-up and configuration is true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from anju.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.req("R1")
def test_readme_documents_every_setting() -> None:
    documented = set(re.findall(r"`(ANJU_[A-Z_]+)`", README))
    for name in Settings.model_fields:
        assert f"ANJU_{name.upper()}" in documented, f"README lacks ANJU_{name.upper()}"


@pytest.mark.req("R1")
def test_readme_links_only_docs_that_exist() -> None:
    for link in re.findall(r"\]\((docs/[^)]+)\)", README):
        assert (ROOT / link).is_file(), f"README links to missing {link}"


@pytest.mark.req("R1")
def test_two_commands_and_ci_entry_point() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M)
    assert re.search(r"^test:", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "ANJU_REQUIRE_SERVICES=1" in ci
    assert "make test" in ci


@pytest.mark.req("R1")
def test_settings_read_prefix_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "anju.toml").write_text('log_level = "DEBUG"\nport = 9001\n')
    monkeypatch.setenv("ANJU_PORT", "9002")
    from anju.settings import load_settings

    s = load_settings(data_dir=tmp_path)
    assert s.log_level == "DEBUG"  # from TOML
    assert s.port == 9002  # environment beats TOML
    assert s.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert str(tmp_path.resolve()) in s.resolved_database_url


@pytest.mark.req("R1")
def test_unknown_setting_in_toml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "anju.toml").write_text("databse_url = 'typo'\n")
    from pydantic import ValidationError

    from anju.settings import load_settings

    with pytest.raises(ValidationError):
        load_settings(data_dir=tmp_path)
