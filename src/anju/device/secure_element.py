"""A software secure element (SE): the interface of a hardware SE, emulated in Python (R19).

The API is the boundary: after manufacture no method returns the device private key, the root
key, the storage key or a stored secret. State lives in a directory (the SE's "flash"), sealed
with SM4-GCM under a storage key kept in ``fuses.bin`` (mode 0600), which stands in for a
hardware-fused key. docs/secure-element.md lists what software cannot give.
"""

from __future__ import annotations

import contextlib
import hmac as _hmac
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from anju.device.se_flash import (
    FUSES_FILE,
    STATE_NAME,
    TOMBSTONE_FILE,
    SeState,
    decode_fuses,
    encode_fuses,
    fresh_random,
    self_test,
)
from anju.device.se_model import (
    ALGORITHMS,
    CODES,
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_PIN_TRIES,
    HMAC_INFO,
    KEY_USAGE,
    MAX_SECRETS,
    SE_VERSION,
    SEAL_INFO,
    SECRET_USAGES,
    STATE_CONTEXT,
    FactoryRecord,
    KeyUsage,
    Lifecycle,
    SecureElementDecryptError,
    SecureElementError,
    SeInfo,
    bad_input,
    check_id,
    check_name,
    check_pin,
)
from anju.device.storage import (
    SlotStore,
    Sm4GcmSealer,
    StorageError,
    fsync_directory,
    replace_durably,
    shred,
)
from anju.errors import AnjuError, IntegrityError
from anju.kit.crypto import (
    SM2PrivateKey,
    SM2PublicKey,
    hkdf_sm3,
    hmac_sm3,
)
from anju.protocol.keys import derive_root_key, derive_session_keys

__all__ = [
    "CODES",
    "FactoryRecord",
    "KeyUsage",
    "Lifecycle",
    "SeInfo",
    "SealedStorage",
    "SecureElementDecryptError",
    "SecureElementError",
    "SoftwareSecureElement",
    "self_test",
]


class SealedStorage:
    """A storage sealer whose key never leaves the SE (satisfies ``storage.Sealer``)."""

    overhead = Sm4GcmSealer.overhead

    def __init__(self, se: SoftwareSecureElement, label: str) -> None:
        self._se = se
        self._label = label

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Seal inside the SE under the label's storage key."""
        return self._se._seal(self._label, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        """Open inside the SE; IntegrityError when it does not authenticate."""
        return self._se._unseal(self._label, sealed, aad)


class SoftwareSecureElement:
    """Emulated SE: SM2 device key, root key, sealing keys and small secrets, used only inside.

    ``manufacture`` personalises a blank SE and returns the one-time :class:`FactoryRecord`;
    ``open`` loads an SE from its directory. Key operations need :meth:`verify_pin` first.
    Satisfies the protocol's ``DeviceKeyStore`` (public_key, sign, decrypt,
    derive_session_keys).
    """

    def __init__(self, path: Path, *, _token: object = None) -> None:
        if _token is not _CONSTRUCT:
            raise TypeError("use SoftwareSecureElement.manufacture() or .open()")
        self.path = path
        self._lock = threading.RLock()
        self._se_id = b""
        self._storage: SlotStore | None = None
        self._state: SeState | None = None
        self._private: SM2PrivateKey | None = None
        self._public: SM2PublicKey | None = None
        self._seal_keys: dict[str, Sm4GcmSealer] = {}
        self._lifecycle = Lifecycle.BLANK
        self._zeroize_reason: str | None = None
        self._authenticated = False

    def __repr__(self) -> str:
        return f"SoftwareSecureElement(se_id={self._se_id.hex()}, {self._lifecycle.value})"

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def _load_fuses(cls, path: Path) -> SoftwareSecureElement:
        se = cls(path, _token=_CONSTRUCT)
        tombstone = path / TOMBSTONE_FILE
        if tombstone.exists():
            se._lifecycle = Lifecycle.ZEROIZED
            se._zeroize_reason = tombstone.read_text(errors="replace")[:200]
            return se
        try:
            data = (path / FUSES_FILE).read_bytes()
        except FileNotFoundError:
            raise SecureElementError("se_not_manufactured", f"no SE at {path}") from None
        se_id, storage_key, personalised = decode_fuses(data)
        se._se_id = se_id
        se._storage = SlotStore(
            path, STATE_NAME, Sm4GcmSealer(storage_key), context=STATE_CONTEXT + se_id
        )
        se._lifecycle = Lifecycle.LOCKED if personalised else Lifecycle.BLANK
        return se

    @classmethod
    def create_blank(cls, path: Path) -> SoftwareSecureElement:
        """Chip-vendor step: fuse a fresh random SE id and storage key into ``path``."""
        self_test()
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (path / FUSES_FILE).exists() or (path / TOMBSTONE_FILE).exists():
            raise SecureElementError("se_already_manufactured", f"an SE already exists at {path}")
        se_id, storage_key = fresh_random(16), fresh_random(16)
        replace_durably(path / FUSES_FILE, encode_fuses(se_id, storage_key, personalised=False))
        return cls._load_fuses(path)

    @classmethod
    def manufacture(
        cls,
        path: Path,
        *,
        device_id: str,
        pin: bytes,
        pin_tries: int = DEFAULT_PIN_TRIES,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
    ) -> tuple[SoftwareSecureElement, FactoryRecord]:
        """Factory mode: personalise the SE at ``path`` (made blank first if empty) for
        ``device_id``; generate keys inside and return the one-time :class:`FactoryRecord`.

        Afterwards the SE is locked: the root key is never readable again.
        """
        check_id(device_id, "device id")
        check_pin(pin)
        if not 1 <= pin_tries <= 15 or not 1 <= failure_threshold <= 1000:
            raise bad_input("pin_tries must be 1..15 and failure_threshold 1..1000")
        se = (
            cls._load_fuses(path)
            if (path / FUSES_FILE).exists() or (path / TOMBSTONE_FILE).exists()
            else cls.create_blank(path)
        )
        with se._lock:
            se._check_alive()
            if se._lifecycle is not Lifecycle.BLANK:
                raise SecureElementError("se_already_manufactured", "SE is already personalised")
            self_test()
            device_key = SM2PrivateKey.generate()
            # Pairwise consistency test of the new key pair before it is trusted.
            probe = fresh_random(32)
            if not device_key.public_key.verify(probe, device_key.sign(probe)):
                raise SecureElementError("se_self_test_failed", "SM2 key pair consistency")
            # R18d: SE id and device id are the diversification factors, dispersed by fresh
            # randomness so nobody can recompute the key from the identifiers.
            root_key = derive_root_key(se._se_id.hex(), device_id, fresh_random(32))
            salt = fresh_random(16)
            state = SeState(
                device_id=device_id,
                version=SE_VERSION,
                device_key=device_key.private_bytes(),
                root_key=root_key,
                data_key=fresh_random(16),
                pin_salt=salt,
                pin_verifier=hmac_sm3(salt, pin),
                pin_tries=pin_tries,
                pin_failures=0,
                failure_threshold=failure_threshold,
                failures=0,
                secrets={},
            )
            se._state = state
            assert se._storage is not None
            se._storage.destroy()  # leftovers of a personalisation that never finished
            se._persist()
            _, storage_key, _ = decode_fuses((path / FUSES_FILE).read_bytes())
            # "Blow the fuse": from now on the SE only opens as personalised (locked).
            replace_durably(
                path / FUSES_FILE, encode_fuses(se._se_id, storage_key, personalised=True)
            )
            se._activate(state)
            record = FactoryRecord(
                device_id=device_id,
                se_id=se._se_id.hex(),
                se_version=SE_VERSION,
                public_key=device_key.public_key,
                root_key=root_key,
            )
            se._authenticated = False
            return se, record

    @classmethod
    def open(cls, path: Path) -> SoftwareSecureElement:
        """Load a personalised SE from its directory (PIN not yet verified).

        A zeroized SE opens in the ZEROIZED state and refuses every operation.
        """
        se = cls._load_fuses(path)
        if se._lifecycle is Lifecycle.ZEROIZED:
            return se
        if se._lifecycle is Lifecycle.BLANK:
            raise SecureElementError("se_not_manufactured", "SE is blank (not personalised)")
        self_test()
        assert se._storage is not None
        try:
            data = se._storage.read()
        except StorageError as exc:
            raise SecureElementError(
                "se_state_corrupt",
                "安全元件状态校验失败 / SE state does not authenticate "
                "(tampered, moved from another SE, or wrong storage key)",
            ) from exc
        if data is None:
            raise SecureElementError("se_state_missing", "SE is personalised but has no state")
        try:
            state = SeState.decode(data)
        except (ValueError, KeyError, TypeError):
            raise SecureElementError("se_state_corrupt", "SE state is malformed") from None
        se._activate(state)
        return se

    def _activate(self, state: SeState) -> None:
        self._state = state
        self._private = SM2PrivateKey(state.device_key)
        self._public = self._private.public_key
        self._lifecycle = Lifecycle.LOCKED

    # -- internals ----------------------------------------------------------------------------
    def _check_alive(self) -> None:
        if self._lifecycle is Lifecycle.ZEROIZED:
            raise SecureElementError(
                "se_zeroized",
                "安全元件已销毁密钥 / the secure element destroyed its keys",
                details={"reason": self._zeroize_reason or ""},
            )

    def _ready(self) -> SeState:
        """Alive, personalised and PIN verified: the state to use."""
        self._check_alive()
        if self._state is None:
            raise SecureElementError("se_not_manufactured", "SE is not personalised")
        if not self._authenticated:
            raise SecureElementError("se_pin_required", "verify the PIN first")
        return self._state

    def _persist(self) -> None:
        """Write the state to both slots, so the older slot never keeps a stale copy
        (a deleted secret or a lower PIN-failure count cannot be recovered from it)."""
        assert self._storage is not None
        assert self._state is not None
        payload = self._state.encode()
        try:
            self._storage.write(payload)
            self._storage.write(payload)
        except StorageError as exc:
            raise SecureElementError("se_storage_io", "SE could not store its state") from exc

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialise operations; turn unexpected faults into a code without any detail."""
        with self._lock:
            try:
                yield
            except AnjuError:
                raise
            except Exception:
                raise SecureElementError("se_internal_error", "secure element fault") from None

    def _require(self, key: str, usage: KeyUsage) -> None:
        if usage not in KEY_USAGE[key]:
            raise SecureElementError("se_usage_denied", f"key {key!r} may not be used that way")

    def _failure(self, kind: str) -> None:
        """Count a failed operation; past the threshold, destroy every key (L16d)."""
        state = self._state
        assert state is not None
        state.failures += 1
        if state.failures >= state.failure_threshold:
            self.zeroize(f"failure threshold reached ({kind})")
            return
        self._persist()

    def _sealer(self, label: str) -> Sm4GcmSealer:
        state = self._ready()
        self._require("data", KeyUsage.SEAL)
        sealer = self._seal_keys.get(label)
        if sealer is None:
            key = hkdf_sm3(state.data_key, length=16, info=SEAL_INFO + label.encode())
            sealer = self._seal_keys[label] = Sm4GcmSealer(key)
        return sealer

    def _seal(self, label: str, plaintext: bytes, aad: bytes) -> bytes:
        with self._guard():
            return self._sealer(label).seal(plaintext, aad)

    def _unseal(self, label: str, sealed: bytes, aad: bytes) -> bytes:
        with self._guard():
            # Not counted as an attack signal: torn writes make unsealing fail legitimately.
            return self._sealer(label).open(sealed, aad)

    # -- identity (no PIN needed) -------------------------------------------------------------
    @property
    def se_id(self) -> str:
        """The SE's unique id (32 hex)."""
        self._check_alive()
        return self._se_id.hex()

    @property
    def device_id(self) -> str:
        """The device this SE was personalised for."""
        self._check_alive()
        if self._state is None:
            raise SecureElementError("se_not_manufactured", "SE is not personalised")
        return self._state.device_id

    @property
    def version(self) -> str:
        """Model/version string of the SE implementation."""
        self._check_alive()
        return self._state.version if self._state is not None else SE_VERSION

    @property
    def lifecycle(self) -> Lifecycle:
        """BLANK, LOCKED or ZEROIZED (always readable)."""
        return self._lifecycle

    @property
    def public_key(self) -> SM2PublicKey:
        """The device's SM2 public key (the only key material that leaves the SE)."""
        self._check_alive()
        if self._public is None:
            raise SecureElementError("se_not_manufactured", "SE is not personalised")
        return self._public

    def info(self) -> SeInfo:
        """Non-secret status: ids, version, lifecycle, PIN tries left, failure counter."""
        self._check_alive()
        state = self._state
        return SeInfo(
            se_id=self._se_id.hex(),
            device_id=state.device_id if state else None,
            version=state.version if state else SE_VERSION,
            lifecycle=self._lifecycle,
            algorithms=ALGORITHMS,
            pin_tries_left=state.pin_tries - state.pin_failures if state else None,
            failures=state.failures if state else None,
            failure_threshold=state.failure_threshold if state else None,
        )

    def key_usage(self, name: str) -> KeyUsage:
        """Usage flags of a fixed key ("device", "root", "data") or a stored secret."""
        with self._guard():
            state = self._ready()
            if name in KEY_USAGE:
                return KEY_USAGE[name]
            if name in state.secrets:
                return state.secrets[name][1]
            raise SecureElementError("se_secret_not_found", f"no key named {name!r}")

    # -- access control -----------------------------------------------------------------------
    def verify_pin(self, pin: bytes) -> None:
        """Open the SE for key operations. Each wrong PIN uses a try; when none are left the
        SE zeroizes itself. The try is counted durably *before* the comparison, so cutting
        power during a guess cannot save the try."""
        with self._guard():
            self._check_alive()
            check_pin(pin)
            state = self._state
            if state is None:
                raise SecureElementError("se_not_manufactured", "SE is not personalised")
            state.pin_failures += 1
            self._persist()
            if _hmac.compare_digest(hmac_sm3(state.pin_salt, pin), state.pin_verifier):
                state.pin_failures = 0
                self._persist()
                self._authenticated = True
                return
            self._authenticated = False
            left = state.pin_tries - state.pin_failures
            if left <= 0:
                self.zeroize("PIN tries exhausted")
                self._check_alive()
            raise SecureElementError(
                "se_wrong_pin", "PIN 错误 / wrong PIN", details={"tries_left": left}
            )

    def logout(self) -> None:
        """Close the PIN session."""
        self._authenticated = False

    # -- key operations -----------------------------------------------------------------------
    def sign(self, message: bytes) -> bytes:
        """SM2 signature (DER, default signer id) by the device key."""
        with self._guard():
            self._ready()
            self._require("device", KeyUsage.SIGN)
            assert self._private is not None
            return self._private.sign(message)

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt an SM2 C1C3C2 DER ciphertext for the device key; a failure is counted."""
        with self._guard():
            self._ready()
            self._require("device", KeyUsage.DECRYPT)
            assert self._private is not None
            try:
                return self._private.decrypt(ciphertext)
            except IntegrityError:
                self._failure("decrypt")
                self._check_alive()
                raise SecureElementDecryptError(
                    "se_decrypt_failed", "SM2 ciphertext did not decrypt"
                ) from None

    def derive_session_keys(self, kp: bytes, salt: bytes, info: bytes) -> tuple[bytes, bytes]:
        """(k_up, k_down) = split(HKDF-SM3(ikm = root ‖ kp, salt, info, 32), 16) — the design's
        session keys. They leave the SE for bulk SM4 work by the device's processor."""
        with self._guard():
            state = self._ready()
            self._require("root", KeyUsage.DERIVE)
            if len(kp) != 32:
                raise bad_input("Kp must be 32 bytes")
            return derive_session_keys(state.root_key, kp, salt, info)

    def hmac(self, label: str, data: bytes) -> bytes:
        """HMAC-SM3(key = HKDF-SM3(root, info = b"anju/se/hmac/v1:" ‖ label, 32), data).

        The platform can compute the same from its copy of the root key.
        """
        with self._guard():
            state = self._ready()
            self._require("root", KeyUsage.HMAC)
            key = hkdf_sm3(state.root_key, length=32, info=HMAC_INFO + check_name(label, "label"))
            return hmac_sm3(key, data)

    def storage_sealer(self, label: str) -> SealedStorage:
        """A sealer for device storage whose key (derived from an SE-only data key, which the
        platform does not have) never leaves the SE."""
        with self._guard():
            self._ready()
            check_name(label, "label")
            return SealedStorage(self, label)

    # -- small secrets ------------------------------------------------------------------------
    def store_secret(
        self, name: str, value: bytes, *, usage: KeyUsage = KeyUsage.HMAC, replace: bool = False
    ) -> None:
        """Import a small secret (1–64 bytes) used only inside: HMAC and/or VERIFY."""
        with self._guard():
            state = self._ready()
            check_name(name, "secret name")
            if not isinstance(value, bytes) or not 1 <= len(value) <= 64:
                raise bad_input("secret must be 1 to 64 bytes")
            if not usage or usage & ~SECRET_USAGES:
                raise bad_input("secret usage must be HMAC and/or VERIFY")
            if name in state.secrets and not replace:
                raise SecureElementError("se_secret_exists", f"secret {name!r} exists")
            if name not in state.secrets and len(state.secrets) >= MAX_SECRETS:
                raise SecureElementError("se_secret_limit", "no free secret slot")
            state.secrets[name] = (value, usage)
            self._persist()

    def _secret(self, name: str, usage: KeyUsage) -> bytes:
        state = self._ready()
        entry = state.secrets.get(name)
        if entry is None:
            raise SecureElementError("se_secret_not_found", f"no secret {name!r}")
        if usage not in entry[1]:
            raise SecureElementError("se_usage_denied", f"secret {name!r} may not be used so")
        return entry[0]

    def hmac_with_secret(self, name: str, data: bytes) -> bytes:
        """HMAC-SM3 of ``data`` under a stored secret with HMAC usage."""
        with self._guard():
            return hmac_sm3(self._secret(name, KeyUsage.HMAC), data)

    def verify_secret(self, name: str, candidate: bytes) -> bool:
        """Constant-time comparison of ``candidate`` with a stored secret with VERIFY usage."""
        with self._guard():
            return _hmac.compare_digest(self._secret(name, KeyUsage.VERIFY), candidate)

    def secret_names(self) -> list[str]:
        """Names of stored secrets (never their values)."""
        with self._guard():
            return sorted(self._ready().secrets)

    def delete_secret(self, name: str) -> None:
        """Delete a secret from both state slots (L13: wiped when its user is deleted)."""
        with self._guard():
            state = self._ready()
            if state.secrets.pop(name, None) is None:
                raise SecureElementError("se_secret_not_found", f"no secret {name!r}")
            self._persist()

    # -- attack response ----------------------------------------------------------------------
    def report_failure(self, kind: str) -> None:
        """Firmware reports an abnormal event (failed handshake, bad frame, forced lock);
        counted durably — past the threshold the SE zeroizes itself."""
        with self._guard():
            self._ready()
            self._failure(check_name(kind, "kind").decode())
            self._check_alive()

    def clear_failures(self) -> None:
        """Reset the failure counter — call only after a mutually authenticated session with
        the platform (anyone can make SM2 ciphertexts for the public key, so a successful
        decryption must not reset it)."""
        with self._guard():
            state = self._ready()
            if state.failures:
                state.failures = 0
                self._persist()

    def zeroize(self, reason: str) -> None:
        """Destroy every key, in memory and in flash (overwritten, then unlinked); the SE
        stays permanently unusable. Idempotent; best effort on files, certain in memory."""
        with self._lock:
            if self._lifecycle is Lifecycle.ZEROIZED:
                return
            self._lifecycle = Lifecycle.ZEROIZED
            self._zeroize_reason = reason[:200]
            self._authenticated = False
            self._state = None
            self._private = None
            self._seal_keys.clear()
            # The tombstone first: if power fails mid-wipe, the SE still refuses to work.
            with contextlib.suppress(OSError):
                (self.path / TOMBSTONE_FILE).write_text(self._zeroize_reason)
                fsync_directory(self.path)
            doomed = [*self.path.glob(f"{STATE_NAME}.*"), self.path / FUSES_FILE]
            for path in [*doomed, self.path / (FUSES_FILE + ".tmp")]:
                with contextlib.suppress(OSError):
                    shred(path)
            self._storage = None


_CONSTRUCT = object()

if TYPE_CHECKING:
    from anju.protocol.handshake import DeviceKeyStore

    def _is_device_key_store(se: SoftwareSecureElement) -> DeviceKeyStore:
        return se  # mypy proves the SE satisfies the handshake's key-store protocol
