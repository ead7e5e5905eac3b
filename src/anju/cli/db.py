"""``anju db …``: schema migrations."""

from __future__ import annotations

import typer

from anju.cli.common import DataDirOption, run, settings_for
from anju.migrations import current_revisions, upgrade
from anju.platform import open_platform

app = typer.Typer(help="Database schema: migrate and inspect.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(data_dir: DataDirOption = None) -> None:
    """Create or migrate the schema to the latest version (SQLite or PostgreSQL).

    On a new embedded installation this also creates the keyring (master key, blind-index key,
    audit signing key) in <data-dir>/keys/.
    """
    settings = settings_for(data_dir)

    async def go() -> set[str]:
        async with open_platform(settings, create_keys=True) as platform:
            await upgrade(platform.db)
            added = platform.keys.add_missing_named_keys()
            if added:
                typer.echo(f"keyring: added {', '.join(added)}")
            return await current_revisions(platform.db)

    revisions = run(go())
    typer.echo(
        f"database at {', '.join(sorted(revisions))} ({_safe_url(settings.resolved_database_url)})"
    )


@app.command("current")
def current_command(data_dir: DataDirOption = None) -> None:
    """Print the schema revisions the database is at."""
    settings = settings_for(data_dir)

    async def go() -> set[str]:
        async with open_platform(settings) as platform:
            return await current_revisions(platform.db)

    revisions = run(go())
    typer.echo(", ".join(sorted(revisions)) or "(empty: run `anju db upgrade`)")


def _safe_url(url: str) -> str:
    """The URL without any password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
