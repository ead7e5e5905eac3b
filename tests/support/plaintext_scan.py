"""Scan raw storage for clear-text PI: proof that declared PI never reaches disk in clear.

Given clear-text values, look through the bytes of:

- a SQLite database file and its ``-wal``, ``-journal`` and ``-shm`` companions,
- a PostgreSQL schema dump made with ``pg_dump -n <schema>``,
- log files (or any other files),

for each value encoded as UTF-8, UTF-16-LE, and (for dumps, where ``bytea`` is printed in hex
and text may be JSON-escaped) as lowercase hex of its UTF-8 and as a ``\\uXXXX`` JSON string.
Every hit is returned with its file, byte offset and encoding, so a failure says where the
value leaked.

    hits = scan_platform_storage(settings.resolved_database_url, ["张三"], workdir=tmp_path)
    assert hits == []
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

SQLITE_COMPANIONS = ("-wal", "-journal", "-shm")


@dataclass(frozen=True)
class Hit:
    """One place a clear-text value was found."""

    file: Path
    offset: int
    value: str
    encoding: str

    def __str__(self) -> str:
        return f"{self.file}@{self.offset}: {self.value!r} ({self.encoding})"


def encodings_of(value: str, *, textual_dump: bool = False) -> list[tuple[str, bytes]]:
    """The byte patterns a value may take on disk (de-duplicated)."""
    utf8 = value.encode("utf-8")
    forms = [("utf-8", utf8), ("utf-16-le", value.encode("utf-16-le"))]
    if textual_dump:
        forms.append(("hex(utf-8)", utf8.hex().encode("ascii")))
        escaped = json.dumps(value, ensure_ascii=True)[1:-1].encode("ascii")
        forms.append(("json-escaped", escaped))
    seen: set[bytes] = set()
    unique = []
    for name, pattern in forms:
        if pattern and pattern not in seen:
            seen.add(pattern)
            unique.append((name, pattern))
    return unique


def scan_bytes(
    data: bytes, values: Iterable[str], file: Path, *, textual_dump: bool = False
) -> list[Hit]:
    """Every occurrence of every value's encodings in ``data``."""
    hits = []
    for value in values:
        if not value:
            raise ValueError("cannot scan for an empty value")
        for name, pattern in encodings_of(value, textual_dump=textual_dump):
            start = data.find(pattern)
            while start != -1:
                hits.append(Hit(file, start, value, name))
                start = data.find(pattern, start + 1)
    return hits


def scan_files(
    paths: Iterable[Path], values: Iterable[str], *, textual_dump: bool = False
) -> list[Hit]:
    """Scan each existing file; missing files are skipped."""
    wanted = list(values)
    hits: list[Hit] = []
    for path in paths:
        if path.is_file():
            hits += scan_bytes(path.read_bytes(), wanted, path, textual_dump=textual_dump)
    return hits


def sqlite_storage_files(db_file: Path) -> list[Path]:
    """The database file and whichever of its WAL / journal / shared-memory files exist."""
    candidates = [db_file, *(db_file.with_name(db_file.name + s) for s in SQLITE_COMPANIONS)]
    return [p for p in candidates if p.is_file()]


def scan_sqlite(db_file: Path, values: Iterable[str]) -> list[Hit]:
    """Scan a SQLite database and its companions byte for byte."""
    if not db_file.is_file():
        raise FileNotFoundError(db_file)
    return scan_files(sqlite_storage_files(db_file), values)


def libpq_url(sqlalchemy_url: str) -> tuple[str, str | None]:
    """(libpq URL for pg_dump, search_path schema) from an anju PostgreSQL URL."""
    url = make_url(sqlalchemy_url)
    schema = url.query.get("search_path")
    plain = url.set(drivername="postgresql").difference_update_query(["search_path"])
    return plain.render_as_string(hide_password=False), (str(schema) if schema else None)


def pg_dump_schema(url: str, schema: str, out: Path, *, data_only: bool = False) -> Path:
    """Dump one schema with ``pg_dump -n`` (plain SQL) to ``out``."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise RuntimeError("pg_dump is not installed")
    args = [pg_dump, "--dbname", url, "--schema", schema, "--file", str(out), "--no-owner"]
    if data_only:
        args.append("--data-only")
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    return out


def scan_postgres_schema(
    sqlalchemy_url: str, values: Iterable[str], workdir: Path, *, data_only: bool = False
) -> list[Hit]:
    """Dump the URL's ``search_path`` schema and scan the dump."""
    url, schema = libpq_url(sqlalchemy_url)
    if schema is None:
        raise ValueError("the PostgreSQL URL names no schema (?search_path=...)")
    dump = pg_dump_schema(url, schema, workdir / f"{schema}.sql", data_only=data_only)
    return scan_files([dump], values, textual_dump=True)


def scan_logs(paths: Iterable[Path], values: Iterable[str]) -> list[Hit]:
    """Scan log files (directories are searched recursively)."""
    files: list[Path] = []
    for path in paths:
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return scan_files(files, values, textual_dump=True)


def scan_platform_storage(database_url: str, values: Iterable[str], workdir: Path) -> list[Hit]:
    """Scan whatever backend ``database_url`` points at (SQLite files or a PostgreSQL schema)."""
    wanted = list(values)
    if database_url.startswith("sqlite"):
        database = make_url(database_url).database
        if not database:
            raise ValueError("in-memory SQLite has no storage to scan")
        return scan_sqlite(Path(database), wanted)
    return scan_postgres_schema(database_url, wanted, workdir)


def platform_storage_files(database_url: str, workdir: Path) -> list[Path]:
    """The files holding the database's data: SQLite's (with WAL and journal), or a fresh
    ``pg_dump`` of the PostgreSQL schema written to ``workdir``."""
    if database_url.startswith("sqlite"):
        database = make_url(database_url).database
        if not database:
            raise ValueError("in-memory SQLite has no storage to scan")
        return sqlite_storage_files(Path(database))
    libpq, schema = libpq_url(database_url)
    if schema is None:
        raise ValueError("the PostgreSQL URL names no schema to dump")
    return [pg_dump_schema(libpq, schema, workdir / "dump.sql")]
