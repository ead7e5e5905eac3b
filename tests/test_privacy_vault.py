"""PIVault: subject data keys, purpose-bound audited decryption, shredding, rewrap, key check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from anju.errors import ConfigurationError, Forbidden, IntegrityError, KeyUnavailable, NotFound
from anju.kit.keyring import FileKeyProvider
from anju.platform import Platform
from anju.privacy.column import EncryptedPI, Sealed
from anju.privacy.models import SubjectDataKey
from anju.privacy.vault import PIVault, SealedValue

pytestmark = pytest.mark.req("R16", "L14", "L3", "L11")

ID_NUMBER = "11010519900101002X"
NAME = "欧阳娜娜"


class CountingKeys(FileKeyProvider):
    """The real file provider, counting unwraps (to observe the data-key cache)."""

    unwraps = 0

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        self.unwraps += 1
        return super().unwrap(wrapped, aad)


def fresh_platform(platform: Platform, keys: FileKeyProvider | None = None) -> Platform:
    """The same database with a newly loaded keyring (so no data key is cached)."""
    return Platform(
        settings=platform.settings,
        db=platform.db,
        keys=keys or FileKeyProvider.load(platform.settings.resolved_key_file),
        clock=platform.clock,
    )


async def audit_rows(session: AsyncSession, action: str) -> list[dict[str, object]]:
    rows = await session.execute(
        text(
            "SELECT actor, target, outcome, details FROM audit_entries WHERE action = :a "
            "ORDER BY leaf_index"
        ),
        {"a": action},
    )
    return [
        {"actor": r[0], "target": r[1], "outcome": r[2], "details": json.loads(r[3])}
        for r in rows.all()
    ]


async def test_seal_then_open_for_an_allowed_purpose_is_audited(platform: Platform) -> None:
    vault = PIVault(platform)
    async with platform.db.transaction() as session:
        sealed = await vault.seal(session, "person.document_number", "subj-1", "row-1", ID_NUMBER)
    assert isinstance(sealed, Sealed)
    assert ID_NUMBER.encode() not in sealed.blob
    assert sealed.generation == 1
    assert "1101" not in repr(sealed)
    async with platform.db.transaction() as session:
        value = await vault.open(
            session,
            "person.document_number",
            "subj-1",
            "row-1",
            sealed,
            purpose="regulator_report",
            actor="account:op-1",
        )
    assert value == ID_NUMBER
    async with platform.db.transaction() as session:
        events = await audit_rows(session, "pi.decrypted")
        row = await session.get(SubjectDataKey, ("subj-1", 1))
    assert events == [
        {
            "actor": "account:op-1",
            "target": "subject:subj-1",
            "outcome": "success",
            "details": {
                "field": "person.document_number",
                "purpose": "regulator_report",
                "row_id": "row-1",
            },
        }
    ]
    assert ID_NUMBER not in json.dumps(events)
    assert row is not None
    assert row.master_version == 1
    assert row.wrapped_key is not None
    assert row.wrapped_key.startswith(b"AMK\x00\x00\x00\x01")


async def test_a_purpose_the_field_does_not_allow_is_forbidden(platform: Platform) -> None:
    vault = PIVault(platform)
    async with platform.db.transaction() as session:
        sealed = await vault.seal(session, "biometric.face_template", "s", "r", "tmpl")
    async with platform.db.transaction() as session:
        for purpose in ("guest_contact", "marketing"):
            with pytest.raises(Forbidden):
                await vault.open(
                    session, "biometric.face_template", "s", "r", sealed, purpose=purpose, actor="x"
                )
        assert await audit_rows(session, "pi.decrypted") == []


async def test_undeclared_fields_cannot_be_sealed(platform: Platform) -> None:
    async with platform.db.transaction() as session:
        with pytest.raises(NotFound):
            await PIVault(platform).seal(session, "person.shoe_size", "s", "r", "42")


@pytest.mark.parametrize(
    ("field", "subject", "row"),
    [
        ("person.name", "subj-1", "row-2"),
        ("person.address", "subj-1", "row-1"),
        ("person.name", "subj-2", "row-1"),
    ],
    ids=["other-row", "other-column", "other-subject"],
)
async def test_a_sealed_value_moved_elsewhere_does_not_open(
    platform: Platform, field: str, subject: str, row: str
) -> None:
    vault = PIVault(platform)
    async with platform.db.transaction() as session:
        sealed = await vault.seal(session, "person.name", "subj-1", "row-1", NAME)
        await vault.seal(session, "person.name", "subj-2", "row-1", "张三")
    async with platform.db.transaction() as session:
        with pytest.raises(IntegrityError):
            await vault.open(
                session, field, subject, row, sealed, purpose="subject_access", actor="x"
            )


async def test_each_subject_gets_its_own_data_key(platform: Platform) -> None:
    vault = PIVault(platform)
    async with platform.db.transaction() as session:
        await vault.seal(session, "person.name", "a", "r", NAME)
        await vault.seal(session, "person.phone", "a", "r", "13800138000")
        await vault.seal(session, "person.name", "b", "r", NAME)
        rows = (await session.execute(select(SubjectDataKey))).scalars().all()
    assert sorted(r.subject_id for r in rows) == ["a", "b"]
    assert rows[0].wrapped_key != rows[1].wrapped_key


async def test_unwrapped_keys_are_cached_and_the_cache_is_bounded(platform: Platform) -> None:
    keys = CountingKeys.load(platform.settings.resolved_key_file)
    vault = PIVault(fresh_platform(platform, keys), cache_size=2)
    async with platform.db.transaction() as session:
        sealed = {s: await vault.seal(session, "person.name", s, "r", NAME) for s in "abc"}
    assert keys.unwraps == 0  # fresh keys are cached when made
    fresh = CountingKeys.load(platform.settings.resolved_key_file)
    vault = PIVault(fresh_platform(platform, fresh), cache_size=2)
    async with platform.db.transaction() as session:

        async def read(subject: str) -> str:
            return await vault.open(
                session,
                "person.name",
                subject,
                "r",
                sealed[subject],
                purpose="subject_access",
                actor="x",
            )

        for _ in range(5):
            assert await read("a") == NAME
        assert fresh.unwraps == 1
        await read("b")
        await read("c")  # evicts "a", the least recently used
        assert fresh.unwraps == 3
        await read("a")
        assert fresh.unwraps == 4


async def test_shredding_makes_every_field_of_the_subject_unreadable(platform: Platform) -> None:
    vault = PIVault(platform)
    async with platform.db.transaction() as session:
        name = await vault.seal(session, "person.name", "gone", "r", NAME)
        doc = await vault.seal(session, "person.document_number", "gone", "r", ID_NUMBER)
        kept = await vault.seal(session, "person.name", "stays", "r", "张三")
        assert (
            await vault.open(
                session, "person.name", "gone", "r", name, purpose="subject_access", actor="x"
            )
            == NAME
        )  # cached now
    async with platform.db.transaction() as session:
        assert await vault.shred_subject(session, "gone", "account:admin") == 1
    other_vault = PIVault(fresh_platform(platform))
    for v in (vault, other_vault):
        async with platform.db.transaction() as session:
            for field, sealed in (("person.name", name), ("person.document_number", doc)):
                with pytest.raises(KeyUnavailable, match="shredded"):
                    await v.open(
                        session, field, "gone", "r", sealed, purpose="subject_access", actor="x"
                    )
            with pytest.raises(KeyUnavailable):
                await v.seal(session, "person.name", "gone", "r2", NAME)
            assert (
                await v.open(
                    session, "person.name", "stays", "r", kept, purpose="subject_access", actor="x"
                )
                == "张三"
            )
    async with platform.db.transaction() as session:
        row = await session.get(SubjectDataKey, ("gone", 1))
        events = await audit_rows(session, "pi.subject_shredded")
    assert row is not None
    assert row.wrapped_key is None
    assert row.shredded_at == platform.clock.now()
    assert events == [
        {
            "actor": "account:admin",
            "target": "subject:gone",
            "outcome": "success",
            "details": {"keys_shredded": 1},
        }
    ]


async def test_shredding_an_unknown_subject_blocks_future_keys(platform: Platform) -> None:
    vault = PIVault(platform)
    async with platform.db.transaction() as session:
        assert await vault.shred_subject(session, "never-seen", "cli") == 0
    async with platform.db.transaction() as session:
        with pytest.raises(KeyUnavailable):
            await vault.seal(session, "person.name", "never-seen", "r", NAME)


async def test_rewrap_all_moves_every_data_key_to_the_current_master(platform: Platform) -> None:
    vault = PIVault(platform)
    subjects = [f"s{i}" for i in range(5)]
    async with platform.db.transaction() as session:
        sealed = {
            s: await vault.seal(session, "person.phone", s, "r", "13800138000") for s in subjects
        }
        await vault.shred_subject(session, "s4", "cli")
    assert platform.keys.rotate() == 2
    async with platform.db.transaction() as session:
        result = await vault.rewrap_all(session, batch_size=2)
    assert (result.rewrapped, result.batches, result.complete) == (4, 2, True)
    assert result.by_version == {1: 4}
    async with platform.db.transaction() as session:
        again = await vault.rewrap_all(session)
        rows = (await session.execute(select(SubjectDataKey))).scalars().all()
    assert (again.rewrapped, again.already_current) == (0, 4)
    assert sorted((r.subject_id, r.master_version) for r in rows) == [
        ("s0", 2),
        ("s1", 2),
        ("s2", 2),
        ("s3", 2),
        ("s4", None),
    ]
    for r in rows:
        if r.wrapped_key is not None:
            assert r.wrapped_key[:7] == b"AMK\x00\x00\x00\x02"
    platform.keys.set_min_decrypt_version(2)
    reader = PIVault(fresh_platform(platform))  # nothing cached: must unwrap with v2
    async with platform.db.transaction() as session:
        for s in subjects[:4]:
            assert (
                await reader.open(
                    session, "person.phone", s, "r", sealed[s], purpose="guest_contact", actor="x"
                )
                == "13800138000"
            )


async def test_rewrap_in_bounded_steps_is_resumable(platform: Platform) -> None:
    vault = PIVault(platform)
    async with platform.db.transaction() as session:
        for i in range(5):
            await vault.seal(session, "person.name", f"s{i}", "r", NAME)
    platform.keys.rotate()
    steps = []
    while True:
        async with platform.db.transaction() as session:
            result = await vault.rewrap_all(session, batch_size=2, max_batches=1)
        steps.append(result.rewrapped)
        if result.complete:
            break
    assert sum(steps) == 5
    assert steps[-1] == 0 or len(steps) == 3


async def test_keys_below_the_minimum_version_are_refused(platform: Platform) -> None:
    vault = PIVault(platform)
    async with platform.db.transaction() as session:
        sealed = await vault.seal(session, "person.name", "old", "r", NAME)
    platform.keys.rotate()
    platform.keys.set_min_decrypt_version(2)  # without rewrapping first: a mistake
    reader = PIVault(fresh_platform(platform))
    async with platform.db.transaction() as session:
        with pytest.raises(KeyUnavailable, match="minimum"):
            await reader.open(
                session, "person.name", "old", "r", sealed, purpose="subject_access", actor="x"
            )


async def test_the_right_keyring_passes_the_key_check(platform: Platform) -> None:
    vault = PIVault(platform)
    async with platform.db.transaction() as session:
        await vault.verify_master_keys(session)  # first use stores the check row
        stored = (await session.execute(text("SELECT count(*) FROM privacy_key_checks"))).scalar()
        await vault.verify_master_keys(session)
    assert stored == 1


async def test_a_wrong_keyring_is_refused_with_a_clear_message(
    platform: Platform, tmp_path: Path
) -> None:
    async with platform.db.transaction() as session:
        await PIVault(platform).seal(session, "person.name", "s", "r", NAME)
    stranger = FileKeyProvider.create(tmp_path / "stranger" / "keyring.json")
    async with platform.db.transaction() as session:
        with pytest.raises(ConfigurationError, match="wrong master key for this database"):
            await PIVault(fresh_platform(platform, stranger)).verify_master_keys(session)


async def test_an_old_keyring_backup_is_refused(platform: Platform, tmp_path: Path) -> None:
    key_file = platform.settings.resolved_key_file
    backup = tmp_path / "backup" / "keyring.json"
    backup.parent.mkdir(mode=0o700)
    shutil.copy2(key_file, backup)
    vault = PIVault(platform)
    platform.keys.rotate()
    async with platform.db.transaction() as session:
        await vault.seal(session, "person.name", "s", "r", NAME)  # stores the v2 check
    async with platform.db.transaction() as session:
        with pytest.raises(ConfigurationError, match="wrong master key for this database"):
            await PIVault(
                fresh_platform(platform, FileKeyProvider.load(backup))
            ).verify_master_keys(session)


async def test_blind_index_and_masking_come_from_the_inventory(platform: Platform) -> None:
    vault = PIVault(platform)
    a = vault.blind_index("person.document_number", "11010519900101002x")
    assert a == vault.blind_index("person.document_number", " 110105 19900101 002X")
    assert a != vault.blind_index("ctid.network_identifier", "11010519900101002X")
    with pytest.raises(ValueError, match="no blind index"):
        vault.blind_index("person.address", "北京市")
    assert vault.mask("person.document_number", ID_NUMBER) == "110105********002X"
    assert vault.mask("biometric.face_template", "anything") == "******"


async def test_encrypted_column_accepts_only_sealed_values(platform: Platform) -> None:
    meta = MetaData()
    table = Table(
        "t_encrypted_column",
        meta,
        Column("id", String(36), primary_key=True),
        Column("doc", EncryptedPI()),
    )
    async with platform.db.engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    vault = PIVault(platform)
    async with platform.db.transaction() as session:
        sealed = await vault.seal(session, "person.document_number", "s", "row-1", ID_NUMBER)
        await session.execute(insert(table).values(id="row-1", doc=sealed))
        await session.execute(insert(table).values(id="row-0", doc=None))
    for clear in (ID_NUMBER, ID_NUMBER.encode(), bytearray(b"x")):
        async with platform.db.transaction() as session:
            with pytest.raises((TypeError, StatementError)) as info:
                await session.execute(insert(table).values(id="row-2", doc=clear))
            cause = info.value if isinstance(info.value, TypeError) else info.value.orig
            assert isinstance(cause, TypeError)
            assert "Sealed" in str(cause)
    async with platform.db.transaction() as session:
        loaded = (await session.execute(select(table.c.doc).where(table.c.id == "row-1"))).scalar()
        empty = (await session.execute(select(table.c.doc).where(table.c.id == "row-0"))).scalar()
        assert loaded == sealed
        assert empty is None
        assert (
            await vault.open(
                session,
                "person.document_number",
                "s",
                "row-1",
                loaded,
                purpose="identity_verification",
                actor="x",
            )
            == ID_NUMBER
        )


async def test_open_many_decrypts_a_batch_audits_each_value_and_checks_each_purpose(
    platform: Platform,
) -> None:
    vault = PIVault(platform)
    async with platform.db.transaction() as session:
        a = await vault.seal(session, "person.name", "subj-a", "row-a", "张三")
        b = await vault.seal(session, "person.document_number", "subj-b", "row-b", ID_NUMBER)
        tmpl = await vault.seal(session, "biometric.face_template", "subj-b", "row-t", "t")
    values = [
        SealedValue("person.name", "subj-a", "row-a", a, "org-1"),
        SealedValue("person.document_number", "subj-b", "row-b", b, "org-2"),
    ]
    async with platform.db.transaction() as session:
        clear = await vault.open_many(
            session, values, purpose="regulator_report", actor="system:reporting"
        )
    assert clear == ["张三", ID_NUMBER]
    async with platform.db.transaction() as session:
        events = await audit_rows(session, "pi.decrypted")
    assert [(e["target"], e["details"]["field"]) for e in events] == [
        ("subject:subj-a", "person.name"),
        ("subject:subj-b", "person.document_number"),
    ]
    assert "张三" not in json.dumps(events, ensure_ascii=False)
    # One value the purpose does not allow refuses the whole batch: nothing opened or audited.
    async with platform.db.transaction() as session:
        with pytest.raises(Forbidden):
            await vault.open_many(
                session,
                [*values, SealedValue("biometric.face_template", "subj-b", "row-t", tmpl)],
                purpose="regulator_report",
                actor="system:reporting",
            )
        assert len(await audit_rows(session, "pi.decrypted")) == 2
