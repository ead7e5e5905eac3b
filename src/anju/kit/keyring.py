"""Master keys and other platform secrets behind a ``KeyProvider``.

A provider wraps and unwraps data keys with *versioned* master keys and never hands a master
key out. Wrapped keys carry a prefix naming their master key version (``AMK`` + uint32), so
rotation is: create a new version (new wraps use it), rewrap existing data keys, raise the
minimum decryption version, and the old version can no longer be used.

``FileKeyProvider`` is the embedded default: one JSON keyring file, mode 0600 in a 0700
directory, written atomically. Production adapters (a KMS, or an HSM over PKCS#11 / SDF,
GM/T 0018) implement the same protocol: ``wrap``/``unwrap``/``rewrap`` become the KMS's
encrypt/decrypt/re-encrypt calls, ``signer`` returns a handle whose ``sign`` runs inside the
HSM, and ``secret`` maps to a derived key that never leaves it (see docs/keys.md).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from anju.errors import ConfigurationError, IntegrityError, KeyUnavailable
from anju.kit.crypto import (
    SM4_GCM_NONCE_BYTES,
    SM4_KEY_BYTES,
    SM2PrivateKey,
    SM2PublicKey,
    random_bytes,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

WRAP_PREFIX = b"AMK"
_HEADER = struct.Struct(">3sI")
KEYRING_FORMAT = "anju-keyring/1"
#: Named symmetric secrets: the blind-index key, the MQTT password of the platform's gateway
#: client ("mqtt-gateway") and the root of the face-template projection keys
#: ("biometric-template", anju.face.template). ``anju db upgrade`` adds names a keyring predates.
NAMED_SECRETS = ("blind-index", "mqtt-gateway", "biometric-template", "access-card")
#: Secrets every keyring has had from the start (checked when it is opened).
_ORIGINAL_SECRETS = ("blind-index",)
#: Named SM2 keys: the audit log's, the device CA that certifies devices (and the gateway), the
#: gateway's own handshake key, the firmware signing key (certified by the device CA), the
#: access-credential key, the key that signs consent receipts ("consent") and the key that signs
#: identity-verification results ("verification", anju.people) and the key that signs regulator
#: reports ("regulator-report", anju.reporting). ``anju db upgrade`` adds names a
#: keyring predates.
NAMED_SIGNERS = (
    "audit",
    "device-ca",
    "device-gateway",
    "firmware",
    "access",
    "consent",
    "verification",
    "regulator-report",
)


class Signer(Protocol):
    """Something that signs with SM2 without exposing its private key (software or HSM)."""

    @property
    def public_key(self) -> SM2PublicKey: ...

    def sign(self, message: bytes, signer_id: bytes = ...) -> bytes: ...


@dataclass(frozen=True)
class MasterKeyInfo:
    version: int
    created: str
    state: str  # "active" (current), "decrypt-only", "retired" (below the minimum)


class KeyProvider(Protocol):
    """What anju needs from a key store. See module docstring for KMS/HSM adapter points."""

    def current_version(self) -> int: ...

    def min_decrypt_version(self) -> int: ...

    def master_keys(self) -> list[MasterKeyInfo]: ...

    def wrap(self, key: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes: ...

    def rewrap(self, wrapped: bytes, aad: bytes) -> bytes: ...

    def rotate(self) -> int: ...

    def set_min_decrypt_version(self, version: int) -> None: ...

    def secret(self, name: str) -> bytes: ...

    def signer(self, name: str) -> Signer: ...

    def add_missing_named_keys(self) -> list[str]: ...


def wrapped_version(wrapped: bytes) -> int:
    """The master key version a wrapped key names in its prefix."""
    if len(wrapped) < _HEADER.size or wrapped[:3] != WRAP_PREFIX:
        raise IntegrityError("wrapped key has no AMK version prefix")
    return int(_HEADER.unpack_from(wrapped)[1])


def _new_signer_entry(created: str) -> dict[str, str]:
    key = SM2PrivateKey.generate()
    return {
        "private": _b64(key.private_bytes()),
        "public": _b64(key.public_key.raw),
        "created": created,
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


class FileKeyProvider:
    """Keyring in one JSON file (embedded default). Refuses files others can read."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self._data = data
        self._masters: dict[int, bytes] = {
            int(v): _unb64(entry["key"]) for v, entry in data["master_keys"].items()
        }
        self._signers: dict[str, SM2PrivateKey] = {}

    # --- lifecycle -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path) -> FileKeyProvider:
        """Make a new keyring (first start). Refuses to overwrite an existing one."""
        if path.exists():
            raise ConfigurationError(f"keyring {path} already exists; refusing to overwrite it")
        now = datetime.now(UTC).isoformat()
        data: dict[str, Any] = {
            "format": KEYRING_FORMAT,
            "current": 1,
            "min_decrypt_version": 1,
            "master_keys": {"1": {"key": _b64(random_bytes(SM4_KEY_BYTES)), "created": now}},
            "secrets": {name: _b64(random_bytes(32)) for name in NAMED_SECRETS},
            "signers": {},
        }
        for name in NAMED_SIGNERS:
            data["signers"][name] = _new_signer_entry(now)
        provider = cls(path, data)
        provider._save()
        return provider

    @classmethod
    def load(cls, path: Path) -> FileKeyProvider:
        """Open an existing keyring, checking its permissions and structure."""
        if not path.is_file():
            raise ConfigurationError(
                f"master key file {path} is missing. If this is a new installation run "
                "`anju db upgrade` (it creates one); otherwise restore it from your key backup — "
                "without it the encrypted data cannot be read."
            )
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigurationError(
                f"key file {path} has loose permissions {oct(mode)}; run `chmod 600 {path}` "
                "(group and others must have no access)"
            )
        try:
            data = json.loads(path.read_text())
            if data.get("format") != KEYRING_FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            provider = cls(path, data)
            if provider.current_version() not in provider._masters:
                raise ValueError("current master key version is missing")
            for name in _ORIGINAL_SECRETS:
                provider.secret(name)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"key file {path} is damaged: {exc}") from None
        return provider

    def add_missing_named_keys(self) -> list[str]:
        """Create the named keys this release knows and the keyring lacks (an upgrade step).

        Only ``anju db upgrade`` (one operator, one process) calls this, so two processes never
        race to write different keys into the same file.
        """
        signers = [name for name in NAMED_SIGNERS if name not in self._data["signers"]]
        secrets = [name for name in NAMED_SECRETS if name not in self._data["secrets"]]
        if signers or secrets:
            now = datetime.now(UTC).isoformat()
            for name in signers:
                self._data["signers"][name] = _new_signer_entry(now)
            for name in secrets:
                self._data["secrets"][name] = _b64(random_bytes(32))
            self._save()
        return signers + secrets

    @classmethod
    def open_or_create(cls, path: Path) -> FileKeyProvider:
        return cls.load(path) if path.exists() else cls.create(path)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self._data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # --- master keys -----------------------------------------------------------------------
    def current_version(self) -> int:
        return int(self._data["current"])

    def min_decrypt_version(self) -> int:
        return int(self._data["min_decrypt_version"])

    def master_keys(self) -> list[MasterKeyInfo]:
        infos = []
        for version in sorted(self._masters):
            if version == self.current_version():
                state = "active"
            elif version < self.min_decrypt_version():
                state = "retired"
            else:
                state = "decrypt-only"
            infos.append(
                MasterKeyInfo(version, self._data["master_keys"][str(version)]["created"], state)
            )
        return infos

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        """Wrap ``key`` under the current master key (SM4-GCM, AAD bound)."""
        version = self.current_version()
        header = _HEADER.pack(WRAP_PREFIX, version)
        nonce = random_bytes(SM4_GCM_NONCE_BYTES)
        return header + nonce + sm4_gcm_encrypt(self._masters[version], nonce, key, header + aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """Unwrap a key; refuses versions below the minimum and tampered blobs."""
        version = wrapped_version(wrapped)
        if version < self.min_decrypt_version():
            raise KeyUnavailable(
                f"master key v{version} is below the minimum decryption version "
                f"v{self.min_decrypt_version()}"
            )
        master = self._masters.get(version)
        if master is None:
            raise KeyUnavailable(f"master key v{version} is not in this keyring")
        header = wrapped[: _HEADER.size]
        nonce = wrapped[_HEADER.size : _HEADER.size + SM4_GCM_NONCE_BYTES]
        sealed = wrapped[_HEADER.size + SM4_GCM_NONCE_BYTES :]
        return sm4_gcm_decrypt(master, nonce, sealed, header + aad)

    def rewrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """Re-wrap under the current version; the data key never leaves the provider."""
        if wrapped_version(wrapped) == self.current_version():
            return wrapped
        return self.wrap(self.unwrap(wrapped, aad), aad)

    def rotate(self) -> int:
        """Create a new master key version and make it current. Returns the new version."""
        version = max(self._masters) + 1
        key = random_bytes(SM4_KEY_BYTES)
        self._data["master_keys"][str(version)] = {
            "key": _b64(key),
            "created": datetime.now(UTC).isoformat(),
        }
        self._data["current"] = version
        self._masters[version] = key
        self._save()
        return version

    def set_min_decrypt_version(self, version: int) -> None:
        """Refuse unwrapping below ``version`` from now on (after a complete rewrap)."""
        if not self.min_decrypt_version() <= version <= self.current_version():
            raise ConfigurationError(
                f"minimum decryption version must be between v{self.min_decrypt_version()} "
                f"and the current v{self.current_version()}"
            )
        self._data["min_decrypt_version"] = version
        self._save()

    # --- other named keys ------------------------------------------------------------------
    def secret(self, name: str) -> bytes:
        """A named independent symmetric secret (e.g. the blind-index key)."""
        try:
            return _unb64(self._data["secrets"][name])
        except KeyError:
            hint = " (run `anju db upgrade`)" if name in NAMED_SECRETS else ""
            raise KeyUnavailable(f"no secret named {name!r} in the keyring{hint}") from None

    def signer(self, name: str) -> SM2PrivateKey:
        """A named SM2 signing key (e.g. the audit log key)."""
        cached = self._signers.get(name)
        if cached is None:
            entry = self._data["signers"].get(name)
            if entry is None:
                hint = " (run `anju db upgrade`)" if name in NAMED_SIGNERS else ""
                raise KeyUnavailable(f"no signing key named {name!r} in the keyring{hint}")
            cached = SM2PrivateKey(_unb64(entry["private"]), _unb64(entry["public"]))
            self._signers[name] = cached
        return cached
