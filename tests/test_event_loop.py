"""Every anju process runs on uvloop unless told otherwise (``anju.kit.aio.run``); a bad
``ANJU_EVENT_LOOP`` is a clear configuration error, at the library and at the CLI."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from anju.cli.main import app
from anju.errors import ConfigurationError
from anju.kit import aio

runner = CliRunner()


async def loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


@pytest.mark.req("R11")
def test_processes_run_on_uvloop_by_default_and_on_asyncio_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANJU_EVENT_LOOP", raising=False)
    assert aio.run(loop_module()).startswith("uvloop")
    monkeypatch.setenv("ANJU_EVENT_LOOP", "asyncio")
    assert aio.run(loop_module()).startswith("asyncio")


@pytest.mark.req("R11")
def test_an_unknown_event_loop_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANJU_EVENT_LOOP", "tokio")
    with pytest.raises(ConfigurationError, match="ANJU_EVENT_LOOP"):
        aio.run(loop_module())
    result = runner.invoke(app, ["audit", "public-key", "--data-dir", "/nonexistent/anju"])
    assert result.exit_code != 0
    assert "ANJU_EVENT_LOOP" in result.output
    assert "Traceback" not in result.output
