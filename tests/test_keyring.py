"""FileKeyProvider: master keys on disk, wrapping with AAD, rotation, rewrap, retirement."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from anju.errors import ConfigurationError, IntegrityError, KeyUnavailable
from anju.kit.keyring import FileKeyProvider, wrapped_version

pytestmark = pytest.mark.req("L14", "R16")

DATA_KEY = bytes(range(16))
AAD = b"subject:42|gen:1"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "keyring.json"


@pytest.fixture
def provider(path: Path) -> FileKeyProvider:
    return FileKeyProvider.create(path)


def test_new_keyring_is_private_to_its_owner(provider: FileKeyProvider, path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert FileKeyProvider.load(path).current_version() == 1


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_load_refuses_a_key_file_others_can_read(
    provider: FileKeyProvider, path: Path, mode: int
) -> None:
    os.chmod(path, mode)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        FileKeyProvider.load(path)


def test_load_explains_a_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="missing") as info:
        FileKeyProvider.load(tmp_path / "nowhere.json")
    assert "backup" in info.value.message


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"format": "something-else/9"}),
        json.dumps(
            {
                "format": "anju-keyring/1",
                "current": 2,
                "min_decrypt_version": 1,
                "master_keys": {"1": {"key": "AAAA", "created": "x"}},
                "secrets": {},
            }
        ),
        json.dumps(
            {
                "format": "anju-keyring/1",
                "current": 1,
                "min_decrypt_version": 1,
                "master_keys": {"1": {"key": "***", "created": "x"}},
                "secrets": {},
            }
        ),
    ],
    ids=["not-json", "wrong-format", "current-missing", "bad-base64"],
)
def test_load_refuses_a_damaged_key_file(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(ConfigurationError, match="damaged"):
        FileKeyProvider.load(path)


def test_create_never_overwrites_an_existing_keyring(provider: FileKeyProvider, path: Path) -> None:
    with pytest.raises(ConfigurationError, match="refusing to overwrite"):
        FileKeyProvider.create(path)


def test_wrap_unwrap_round_trip_binds_the_aad(provider: FileKeyProvider) -> None:
    wrapped = provider.wrap(DATA_KEY, AAD)
    assert DATA_KEY not in wrapped
    assert wrapped[:3] == b"AMK"
    assert wrapped_version(wrapped) == 1
    assert provider.unwrap(wrapped, AAD) == DATA_KEY
    with pytest.raises(IntegrityError):
        provider.unwrap(wrapped, b"subject:43|gen:1")
    with pytest.raises(IntegrityError):
        provider.unwrap(wrapped, b"")


@pytest.mark.parametrize("position", [7, 8, 15, 20, -1])
def test_a_tampered_wrapped_key_is_refused(provider: FileKeyProvider, position: int) -> None:
    wrapped = bytearray(provider.wrap(DATA_KEY, AAD))
    wrapped[position] ^= 0x01
    with pytest.raises(IntegrityError):
        provider.unwrap(bytes(wrapped), AAD)


def test_a_blob_without_the_version_prefix_is_refused(provider: FileKeyProvider) -> None:
    with pytest.raises(IntegrityError):
        provider.unwrap(b"XYZ" + provider.wrap(DATA_KEY, AAD)[3:], AAD)
    with pytest.raises(IntegrityError):
        provider.unwrap(b"AM", AAD)


def test_a_key_from_another_keyring_does_not_unwrap(
    provider: FileKeyProvider, tmp_path: Path
) -> None:
    other = FileKeyProvider.create(tmp_path / "other" / "keyring.json")
    with pytest.raises(IntegrityError):
        other.unwrap(provider.wrap(DATA_KEY, AAD), AAD)


def test_rotation_wraps_with_the_new_version_and_keeps_old_wraps_readable(
    provider: FileKeyProvider, path: Path
) -> None:
    old = provider.wrap(DATA_KEY, AAD)
    assert provider.rotate() == 2
    new = provider.wrap(DATA_KEY, AAD)
    assert wrapped_version(new) == 2
    reloaded = FileKeyProvider.load(path)  # rotation is persisted
    assert reloaded.current_version() == 2
    assert reloaded.unwrap(old, AAD) == DATA_KEY
    assert reloaded.unwrap(new, AAD) == DATA_KEY
    assert [(k.version, k.state) for k in reloaded.master_keys()] == [
        (1, "decrypt-only"),
        (2, "active"),
    ]


def test_rewrap_moves_a_blob_to_the_current_version(provider: FileKeyProvider) -> None:
    old = provider.wrap(DATA_KEY, AAD)
    assert provider.rewrap(old, AAD) == old  # already current: unchanged
    provider.rotate()
    moved = provider.rewrap(old, AAD)
    assert wrapped_version(moved) == 2
    assert DATA_KEY not in moved
    assert provider.unwrap(moved, AAD) == DATA_KEY
    with pytest.raises(IntegrityError):
        provider.rewrap(old, b"other aad")


def test_after_raising_the_minimum_older_blobs_are_refused(
    provider: FileKeyProvider, path: Path
) -> None:
    old = provider.wrap(DATA_KEY, AAD)
    provider.rotate()
    moved = provider.rewrap(old, AAD)
    provider.set_min_decrypt_version(2)
    reloaded = FileKeyProvider.load(path)
    for keys in (provider, reloaded):
        with pytest.raises(KeyUnavailable, match="minimum decryption version"):
            keys.unwrap(old, AAD)
        with pytest.raises(KeyUnavailable):
            keys.rewrap(old, AAD)
        assert keys.unwrap(moved, AAD) == DATA_KEY
        assert [(k.version, k.state) for k in keys.master_keys()] == [
            (1, "retired"),
            (2, "active"),
        ]


@pytest.mark.parametrize("version", [0, 3])
def test_the_minimum_must_stay_within_existing_versions(
    provider: FileKeyProvider, version: int
) -> None:
    provider.rotate()
    with pytest.raises(ConfigurationError):
        provider.set_min_decrypt_version(version)


def test_unknown_version_is_unavailable(provider: FileKeyProvider) -> None:
    blob = bytearray(provider.wrap(DATA_KEY, AAD))
    blob[3:7] = (9).to_bytes(4, "big")
    with pytest.raises(KeyUnavailable, match="v9"):
        provider.unwrap(bytes(blob), AAD)


def test_blind_index_secret_is_its_own_key(provider: FileKeyProvider, path: Path) -> None:
    secret = provider.secret("blind-index")
    assert len(secret) == 32
    provider.rotate()
    masters = [
        base64.b64decode(v["key"]) for v in json.loads(path.read_text())["master_keys"].values()
    ]
    assert len(masters) == 2
    assert all(master not in secret for master in masters)
    assert FileKeyProvider.load(path).secret("blind-index") == secret
    with pytest.raises(KeyUnavailable):
        provider.secret("no-such-secret")


def test_audit_signer_is_stable_across_loads(provider: FileKeyProvider, path: Path) -> None:
    signer = provider.signer("audit")
    signature = signer.sign(b"checkpoint")
    assert FileKeyProvider.load(path).signer("audit").public_key.verify(b"checkpoint", signature)


@pytest.mark.req("L14", "R16")
def test_upgrade_adds_named_keys_a_keyring_predates_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keyring.json"
    FileKeyProvider.create(path)
    data = json.loads(path.read_text())
    del data["signers"]["device-ca"]  # as written by a release that had no device CA yet
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    with pytest.raises(KeyUnavailable, match="anju db upgrade"):
        FileKeyProvider.load(path).signer("device-ca")
    assert FileKeyProvider.load(path).add_missing_named_keys() == ["device-ca"]
    first = FileKeyProvider.load(path).signer("device-ca").public_key
    assert FileKeyProvider.load(path).add_missing_named_keys() == []
    assert FileKeyProvider.load(path).signer("device-ca").public_key == first  # persisted
    with pytest.raises(KeyUnavailable):
        FileKeyProvider.load(path).signer("no-such-key")
