"""No PI in clear at rest: the plaintext scanner finds planted values, and finds nothing after a
real seal / store / open round trip — in the SQLite file and its WAL, or a PostgreSQL dump."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import Column, LargeBinary, MetaData, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from anju.platform import Platform
from anju.privacy.column import EncryptedPI
from anju.privacy.fields import INVENTORY
from anju.privacy.vault import PIVault
from tests.support.plaintext_scan import (
    encodings_of,
    scan_files,
    scan_logs,
    scan_platform_storage,
    sqlite_storage_files,
)

pytestmark = pytest.mark.req("R16", "L3", "L10", "L13")

PERSON = {
    "person.name": "欧阳娜娜",
    "person.document_number": "11010519900101002X",
    "person.phone": "13912345678",
    "person.email": "ouyang.nana@example.com",
    "person.address": "北京市朝阳区建国路88号SOHO现代城A座1201",
}

meta = MetaData()
people = Table(
    "t_scan_people",
    meta,
    Column("id", String(36), primary_key=True),
    *(Column(INVENTORY.get(f).column, EncryptedPI()) for f in PERSON),
)
leaky = Table(
    "t_scan_leaky",
    meta,
    Column("id", String(36), primary_key=True),
    Column("note", Text()),
    Column("raw", LargeBinary()),
)


async def create_tables(platform: Platform) -> None:
    async with platform.db.engine.begin() as conn:
        await conn.run_sync(meta.create_all)


async def seal_and_store(platform: Platform, session: AsyncSession) -> None:
    vault = PIVault(platform)
    values = {
        INVENTORY.get(f).column: await vault.seal(session, f, "subject-1", "person-1", v)
        for f, v in PERSON.items()
    }
    await session.execute(insert(people).values(id="person-1", **values))


def test_encodings_cover_utf8_utf16_hex_and_json() -> None:
    forms = dict(encodings_of("张三", textual_dump=True))
    assert forms["utf-8"] == "张三".encode()
    assert forms["utf-16-le"] == "张三".encode("utf-16-le")
    assert forms["hex(utf-8)"] == "张三".encode().hex().encode()
    assert forms["json-escaped"] == b"\\u5f20\\u4e09"


def test_scanner_reports_file_offset_and_encoding(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"prefix " + "张三".encode() + b" mid " + "张三".encode("utf-16-le"))
    hits = scan_files([log, tmp_path / "missing.log"], ["张三", "李四"])
    assert [(h.file, h.offset, h.value, h.encoding) for h in hits] == [
        (log, 7, "张三", "utf-8"),
        (log, 18, "张三", "utf-16-le"),
    ]
    with pytest.raises(ValueError, match="empty"):
        scan_files([log], [""])


async def test_scanner_finds_a_planted_value_in_raw_storage(
    platform: Platform, tmp_path: Path
) -> None:
    await create_tables(platform)
    async with platform.db.transaction() as session:
        await session.execute(
            insert(leaky).values(
                id="1", note=PERSON["person.name"], raw=PERSON["person.phone"].encode()
            )
        )
    hits = scan_platform_storage(platform.settings.resolved_database_url, PERSON.values(), tmp_path)
    found = {h.value for h in hits}
    assert found == {PERSON["person.name"], PERSON["person.phone"]}
    if platform.db.is_sqlite:
        # Right after commit the new pages live in the write-ahead log.
        assert any(h.file.name.endswith("-wal") for h in hits)
    else:
        assert {h.encoding for h in hits} >= {"utf-8", "hex(utf-8)"}  # text, bytea


async def test_no_pi_in_clear_after_a_seal_store_open_round_trip(
    platform: Platform, tmp_path: Path
) -> None:
    log_file = tmp_path / "logs" / "anju.log"
    log_file.parent.mkdir()
    handler = logging.FileHandler(log_file, encoding="utf-8")
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)  # whatever anything logs during the round trip lands here
    try:
        await create_tables(platform)
        async with platform.db.transaction() as session:
            await seal_and_store(platform, session)
        vault = PIVault(platform)
        async with platform.db.transaction() as session:
            row = (await session.execute(select(people))).one()._mapping
            for f, clear in PERSON.items():
                column = INVENTORY.get(f).column
                opened = await vault.open(
                    session,
                    f,
                    "subject-1",
                    "person-1",
                    row[column],
                    purpose="subject_access",
                    actor="account:me",
                )
                assert opened == clear
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    url = platform.settings.resolved_database_url
    if platform.db.is_sqlite:
        files = sqlite_storage_files(Path(url.split("///", 1)[1]))
        assert any(p.name.endswith("-wal") for p in files)  # the WAL is really scanned
    assert scan_platform_storage(url, PERSON.values(), tmp_path) == []
    assert scan_logs([log_file.parent], PERSON.values()) == []
    # Control: the same scan does see a clear copy once one is written.
    async with platform.db.transaction() as session:
        await session.execute(insert(leaky).values(id="ctl", note=PERSON["person.address"]))
    hits = scan_platform_storage(url, PERSON.values(), tmp_path)
    assert {h.value for h in hits} == {PERSON["person.address"]}
