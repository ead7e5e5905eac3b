"""``PIVault``: seal and open PI fields with per-subject data keys (envelope encryption, R16/L14).

Key hierarchy: master keys (``KeyProvider``) wrap one SM4 data key per data subject
(``privacy_subject_keys``); data keys seal field values (``anju.kit.envelope``). Decryption
needs a purpose the field's inventory entry allows and is always audited (L11). Deleting a
subject's wrapped keys is crypto-shredding: every value sealed for them becomes unreadable.

Unwrapping a data key is a call into the key provider (a network round trip with a KMS), so
unwrapped keys are kept in a small LRU cache shared by every vault over the same provider and
database. Entries expire after ``cache_ttl`` seconds so a shred made by *another* process takes
effect here within that time; in this process a shred evicts the subject at once.
"""

from __future__ import annotations

import struct
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from anju.audit import AuditLog, NewEntry
from anju.errors import ConfigurationError, Forbidden, IntegrityError, KeyUnavailable
from anju.kit.blind_index import BlindIndex
from anju.kit.crypto import SM4_KEY_BYTES, random_bytes
from anju.kit.envelope import FieldContext, blob_generation, open_field, seal_field
from anju.kit.keyring import KeyProvider, wrapped_version
from anju.kit.masking import mask
from anju.privacy import repository as repo
from anju.privacy.column import Sealed
from anju.privacy.fields import INVENTORY
from anju.privacy.inventory import Inventory, PIField
from anju.privacy.models import SUBJECT_ID_LENGTH, MasterKeyCheck, SubjectDataKey

if TYPE_CHECKING:
    from anju.platform import Platform

DATA_KEY_AAD_LABEL = b"anju/subject-data-key/v1"
KEY_CHECK_AAD = b"anju/master-key-check/v1"
KEY_CHECK_VALUE = b"anju master key check v1"
DEFAULT_CACHE_SIZE = 4096
DEFAULT_CACHE_TTL = 60.0
_U32 = struct.Struct(">I")


def data_key_aad(subject_id: str, generation: int) -> bytes:
    """AAD of a wrapped data key: label, then length-prefixed subject id, then generation."""
    raw = subject_id.encode("utf-8")
    return DATA_KEY_AAD_LABEL + _U32.pack(len(raw)) + raw + _U32.pack(generation)


@dataclass
class _SubjectKeys:
    current: int | None
    keys: dict[int, bytes]
    expires: float


class DataKeyCache:
    """Bounded LRU of unwrapped data keys per (database, subject), with an expiry."""

    def __init__(self, max_subjects: int, ttl: float) -> None:
        self.max_subjects = max_subjects
        self.ttl = ttl
        self._entries: OrderedDict[tuple[str, str], _SubjectKeys] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, db: str, subject_id: str, generation: int | None) -> tuple[int, bytes] | None:
        """A cached key: ``generation`` None asks for the subject's current one."""
        with self._lock:
            entry = self._entries.get((db, subject_id))
            if entry is None:
                return None
            if entry.expires < time.monotonic():
                del self._entries[(db, subject_id)]
                return None
            gen = entry.current if generation is None else generation
            if gen is None or gen not in entry.keys:
                return None
            self._entries.move_to_end((db, subject_id))
            return gen, entry.keys[gen]

    def put(self, db: str, subject_id: str, generation: int, key: bytes, *, current: bool) -> None:
        with self._lock:
            entry = self._entries.get((db, subject_id))
            if entry is None or entry.expires < time.monotonic():
                entry = _SubjectKeys(None, {}, time.monotonic() + self.ttl)
                self._entries[(db, subject_id)] = entry
            entry.keys[generation] = key
            if current:
                entry.current = generation
            self._entries.move_to_end((db, subject_id))
            while len(self._entries) > self.max_subjects:
                self._entries.popitem(last=False)

    def evict(self, db: str, subject_id: str) -> None:
        with self._lock:
            self._entries.pop((db, subject_id), None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_caches: weakref.WeakKeyDictionary[KeyProvider, DataKeyCache] = weakref.WeakKeyDictionary()


def _cache_for(keys: KeyProvider, size: int, ttl: float) -> DataKeyCache:
    cache = _caches.get(keys)
    if cache is None:
        cache = _caches[keys] = DataKeyCache(size, ttl)
    return cache


@dataclass
class RewrapResult:
    """What ``rewrap_all`` did."""

    master_version: int
    rewrapped: int = 0
    already_current: int = 0
    batches: int = 0
    complete: bool = False
    by_version: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SealedValue:
    """One sealed value to open with :meth:`PIVault.open_many`, and whose it is."""

    field: PIField | str
    subject_id: str
    row_id: str
    sealed: Sealed
    org_id: str | None = None


def _decrypted(
    entry: PIField, subject_id: str, row_id: str, purpose: str, actor: str, org_id: str | None
) -> NewEntry:
    """The audit entry of one decryption (never the value: field, purpose and row only)."""
    return NewEntry(
        action="pi.decrypted",
        actor=actor,
        org_id=org_id,
        target=f"subject:{subject_id}",
        outcome="success",
        details={"field": entry.name, "purpose": purpose, "row_id": row_id},
    )


class PIVault:
    """Seal/open PI for data subjects; shred a subject; rewrap and verify master keys."""

    def __init__(
        self,
        platform: Platform,
        *,
        inventory: Inventory = INVENTORY,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_ttl: float = DEFAULT_CACHE_TTL,
    ) -> None:
        self._platform = platform
        self._keys = platform.keys
        self._db = platform.db.url
        self._inventory = inventory
        self._cache = _cache_for(platform.keys, cache_size, cache_ttl)
        self._audit = AuditLog(platform)
        self._index: BlindIndex | None = None

    # --- fields ----------------------------------------------------------------------------
    def field(self, field: PIField | str) -> PIField:
        """The inventory entry (accepts the entry itself or its name)."""
        return field if isinstance(field, PIField) else self._inventory.get(field)

    def blind_index(self, field: PIField | str, value: str) -> bytes:
        """The field's blind index of ``value``; ValueError if the field declares none."""
        entry = self.field(field)
        if entry.blind_index is None:
            raise ValueError(f"PI field {entry.name} has no blind index")
        if self._index is None:
            self._index = BlindIndex(self._keys.secret("blind-index"))
        return self._index.compute(entry.name, value, entry.blind_index)

    def mask(self, field: PIField | str, value: str | None) -> str:
        """The field's masked display form of a clear value."""
        return mask(self.field(field).masking, value)

    # --- seal / open -----------------------------------------------------------------------
    async def seal(
        self, session: AsyncSession, field: PIField | str, subject_id: str, row_id: str, value: str
    ) -> Sealed:
        """Encrypt ``value`` for storage in the field's column of row ``row_id``."""
        return await self.seal_bytes(session, field, subject_id, row_id, value.encode("utf-8"))

    async def seal_bytes(
        self,
        session: AsyncSession,
        field: PIField | str,
        subject_id: str,
        row_id: str,
        value: bytes,
    ) -> Sealed:
        """Like :meth:`seal` for binary values (templates)."""
        entry = self.field(field)
        generation, key = await self._current_key(session, subject_id)
        context = FieldContext(entry.table, entry.column, row_id, subject_id)
        return Sealed(seal_field(key, generation, context, value))

    async def open(
        self,
        session: AsyncSession,
        field: PIField | str,
        subject_id: str,
        row_id: str,
        sealed: Sealed,
        *,
        purpose: str,
        actor: str,
        org_id: str | None = None,
    ) -> str:
        """Decrypt for a stated purpose the field allows; audited as ``pi.decrypted``."""
        raw = await self.open_bytes(
            session, field, subject_id, row_id, sealed, purpose=purpose, actor=actor, org_id=org_id
        )
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise IntegrityError("sealed value is binary, not text; use open_bytes") from None

    async def open_bytes(
        self,
        session: AsyncSession,
        field: PIField | str,
        subject_id: str,
        row_id: str,
        sealed: Sealed,
        *,
        purpose: str,
        actor: str,
        org_id: str | None = None,
    ) -> bytes:
        """Like :meth:`open` for binary values."""
        entry = self.field(field)
        plaintext = await self._decrypt(session, entry, subject_id, row_id, sealed, purpose)
        await self._audit.record_many(
            session, [_decrypted(entry, subject_id, row_id, purpose, actor, org_id)]
        )
        return plaintext

    async def open_many(
        self,
        session: AsyncSession,
        values: Sequence[SealedValue],
        *,
        purpose: str,
        actor: str,
    ) -> list[str]:
        """Decrypt several text values for one purpose (e.g. a batch of regulator reports);
        each is audited as ``pi.decrypted`` like :meth:`open`, appended to the log in one go."""
        out: list[str] = []
        entries: list[NewEntry] = []
        for value in values:
            entry = self.field(value.field)
            raw = await self._decrypt(
                session, entry, value.subject_id, value.row_id, value.sealed, purpose
            )
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise IntegrityError("sealed value is binary, not text; use open_bytes") from None
            entries.append(
                _decrypted(entry, value.subject_id, value.row_id, purpose, actor, value.org_id)
            )
        await self._audit.record_many(session, entries)
        return out

    async def _decrypt(
        self,
        session: AsyncSession,
        entry: PIField,
        subject_id: str,
        row_id: str,
        sealed: Sealed,
        purpose: str,
    ) -> bytes:
        if not entry.allows(purpose):
            raise Forbidden(
                f"目的 {purpose!r} 不允许解密 {entry.name} / purpose {purpose!r} may not decrypt "
                f"{entry.name}",
                details={"field": entry.name, "purpose": purpose},
            )
        if not isinstance(sealed, Sealed):
            raise TypeError("open takes a Sealed value")
        generation = blob_generation(sealed.blob)
        key = await self._key(session, subject_id, generation)
        context = FieldContext(entry.table, entry.column, row_id, subject_id)
        return open_field(key, context, sealed.blob)

    # --- data keys -------------------------------------------------------------------------
    async def _current_key(self, session: AsyncSession, subject_id: str) -> tuple[int, bytes]:
        cached = self._cache.get(self._db, subject_id, None)
        if cached is not None:
            return cached
        row = await repo.latest_subject_key(session, subject_id)
        if row is None:
            created = await self._create_key(session, subject_id)
            if created is not None:
                generation, key = created
                self._cache.put(self._db, subject_id, generation, key, current=True)
                return generation, key
            row = await repo.latest_subject_key(session, subject_id)  # a concurrent creator won
            assert row is not None
        key = self._unwrap_row(row)
        self._cache.put(self._db, subject_id, row.generation, key, current=True)
        return row.generation, key

    async def _key(self, session: AsyncSession, subject_id: str, generation: int) -> bytes:
        cached = self._cache.get(self._db, subject_id, generation)
        if cached is not None:
            return cached[1]
        row = await repo.subject_key(session, subject_id, generation)
        if row is None:
            raise KeyUnavailable(f"subject {subject_id} has no data key generation {generation}")
        key = self._unwrap_row(row)
        self._cache.put(self._db, subject_id, generation, key, current=False)
        return key

    def _unwrap_row(self, row: SubjectDataKey) -> bytes:
        if row.wrapped_key is None:
            raise KeyUnavailable(
                f"数据主体 {row.subject_id} 的密钥已销毁 / the data key of subject "
                f"{row.subject_id} was shredded; its data can no longer be read"
            )
        return self._keys.unwrap(row.wrapped_key, data_key_aad(row.subject_id, row.generation))

    async def _create_key(self, session: AsyncSession, subject_id: str) -> tuple[int, bytes] | None:
        """A new generation-1 data key, stored wrapped; None if a concurrent seal made it."""
        if not subject_id or len(subject_id) > SUBJECT_ID_LENGTH:
            raise ValueError(f"subject id must be 1..{SUBJECT_ID_LENGTH} characters")
        await self._ensure_key_check(session)
        generation = 1
        key = random_bytes(SM4_KEY_BYTES)
        wrapped = self._keys.wrap(key, data_key_aad(subject_id, generation))
        row = SubjectDataKey(
            subject_id=subject_id,
            generation=generation,
            master_version=wrapped_version(wrapped),
            wrapped_key=wrapped,
            created_at=self._platform.clock.now(),
            shredded_at=None,
        )
        try:
            async with session.begin_nested():
                await repo.add_subject_key(session, row)
        except DbIntegrityError:
            return None
        return generation, key

    # --- crypto-shredding ------------------------------------------------------------------
    async def shred_subject(
        self, session: AsyncSession, subject_id: str, actor: str, *, org_id: str | None = None
    ) -> int:
        """Destroy the subject's data keys: all their sealed values become unreadable."""
        now = self._platform.clock.now()
        shredded = await repo.shred_subject_keys(session, subject_id, now)
        if await repo.latest_subject_key(session, subject_id) is None:
            # A tombstone, so a later seal cannot quietly give the subject a fresh key.
            await repo.add_subject_key(
                session,
                SubjectDataKey(
                    subject_id=subject_id,
                    generation=1,
                    master_version=None,
                    wrapped_key=None,
                    created_at=now,
                    shredded_at=now,
                ),
            )
        self._cache.evict(self._db, subject_id)
        await self._audit.record(
            session,
            action="pi.subject_shredded",
            actor=actor,
            org_id=org_id,
            target=f"subject:{subject_id}",
            outcome="success",
            details={"keys_shredded": shredded},
        )
        return shredded

    # --- master keys -----------------------------------------------------------------------
    async def rewrap_all(
        self, session: AsyncSession, *, batch_size: int = 500, max_batches: int | None = None
    ) -> RewrapResult:
        """Rewrap live data keys to the current master version in batches (flushed each).

        ``max_batches`` bounds the work per transaction; rewrapping is idempotent, so a caller
        may commit and call again until ``complete`` is true.
        """
        current = self._keys.current_version()
        result = RewrapResult(master_version=current)
        await self._ensure_key_check(session)
        after: tuple[str, int] | None = None
        while True:
            rows = await repo.keys_wrapped_below(session, current, after, batch_size)
            if not rows:
                result.complete = True
                break
            if max_batches is not None and result.batches >= max_batches:
                break
            for row in rows:
                assert row.wrapped_key is not None
                assert row.master_version is not None
                result.by_version[row.master_version] = (
                    result.by_version.get(row.master_version, 0) + 1
                )
                aad = data_key_aad(row.subject_id, row.generation)
                row.wrapped_key = self._keys.rewrap(row.wrapped_key, aad)
                row.master_version = wrapped_version(row.wrapped_key)
                result.rewrapped += 1
            await session.flush()
            result.batches += 1
            after = (rows[-1].subject_id, rows[-1].generation)
        counts = await repo.count_keys_by_master_version(session)
        result.already_current = counts.get(current, 0) - result.rewrapped
        return result

    async def verify_master_keys(self, session: AsyncSession, *, store_check: bool = True) -> None:
        """Refuse a keyring that does not belong to this database (ConfigurationError).

        With ``store_check`` (the default) the current master version's check row is stored on
        its first use; ``store_check=False`` only reads.
        """
        current = self._keys.current_version()
        minimum = self._keys.min_decrypt_version()
        checks = await repo.key_checks(session)
        for check in checks:
            if check.master_version < minimum:
                continue  # retired: its key may legitimately be gone
            try:
                value = self._keys.unwrap(check.wrapped_check, KEY_CHECK_AAD)
            except (IntegrityError, KeyUnavailable):
                raise _wrong_master_key(check.master_version) from None
            if value != KEY_CHECK_VALUE:
                raise _wrong_master_key(check.master_version)
        newest_in_db = max(
            [c.master_version for c in checks]
            + [v for v in [await repo.max_wrapped_master_version(session)] if v is not None],
            default=0,
        )
        if newest_in_db > current:
            raise ConfigurationError(
                f"数据库使用的主密钥 v{newest_in_db} 比密钥环当前版本 v{current} 新 / wrong master "
                f"key for this database: it uses master key v{newest_in_db} but the keyring's "
                f"current version is v{current} (an old keyring backup?). Restore the matching "
                "keyring; see docs/keys.md."
            )
        if store_check:
            await self._ensure_key_check(session)

    async def _ensure_key_check(self, session: AsyncSession) -> None:
        """On first use of a master version, store the known value wrapped under it."""
        version = self._keys.current_version()
        if await repo.key_check(session, version) is not None:
            return
        wrapped = self._keys.wrap(KEY_CHECK_VALUE, KEY_CHECK_AAD)
        check = MasterKeyCheck(
            master_version=wrapped_version(wrapped),
            wrapped_check=wrapped,
            created_at=self._platform.clock.now(),
        )
        try:
            async with session.begin_nested():
                await repo.add_key_check(session, check)
        except DbIntegrityError:
            pass  # a concurrent first use stored it


def _wrong_master_key(version: int) -> ConfigurationError:
    return ConfigurationError(
        f"主密钥与数据库不匹配 / wrong master key for this database: master key v{version} in "
        "the keyring does not open this database's key check. Start with the keyring that "
        "belongs to this database (restore it from the key backup); see docs/keys.md."
    )
