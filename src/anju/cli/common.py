"""Options and helpers shared by every CLI command."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from anju.errors import AnjuError
from anju.kit import aio
from anju.platform import Platform, open_platform
from anju.settings import Settings, load_settings

T = TypeVar("T")

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (embedded database, key files, broker state). Default ./.anju "
        "or $ANJU_DATA_DIR.",
        show_default=False,
    ),
]


def settings_for(data_dir: Path | None) -> Settings:
    """Settings with the CLI's --data-dir applied; configuration errors exit with code 2."""
    try:
        return load_settings(data_dir=data_dir)
    except Exception as exc:  # pydantic ValidationError, bad TOML, missing config file
        fail(f"configuration error: {exc}", code=2)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error to stderr and exit with ``code``."""
    typer.echo(f"anju: {message}", err=True)
    raise typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine as a CLI boundary; domain errors become a clean message and exit 1."""
    try:
        return aio.run(coro)
    except AnjuError as exc:
        fail(f"{exc.message} [{exc.code}]")


def in_transaction(
    data_dir: Path | None, work: Callable[[Platform, AsyncSession], Awaitable[T]]
) -> T:
    """Run ``work`` in one transaction on the platform the data directory configures."""
    settings = settings_for(data_dir)

    async def go() -> T:
        async with open_platform(settings) as platform, platform.db.transaction() as session:
            return await work(platform, session)

    return run(go())


def run_sync(fn: Callable[[], Awaitable[T]]) -> T:
    """Like :func:`run` for a zero-argument async callable."""
    return run(_call(fn))


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


def is_tty() -> bool:
    return sys.stdout.isatty()
