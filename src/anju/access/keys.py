"""The platform's cryptography of access credentials: the per-lock root key (to compute the
passcode digest the lock keeps), per-card keys, sealing a credential to a lock's SE, and the
ACCESS certificate that locks check the signatures against."""

from __future__ import annotations

from anju.devices.ca import ACCESS_SIGNER, platform_access_certificate
from anju.devices.lifecycle import root_key_aad
from anju.devices.models import Device
from anju.errors import Conflict
from anju.kit.crypto import SM2PublicKey, hmac_sm3
from anju.kit.keyring import KeyProvider
from anju.protocol.access import (
    CARD_KEY_BYTES,
    PASSCODE_LABEL,
    CredentialRecord,
    EKeyToken,
    issue_ekey,
    seal_credential,
)
from anju.protocol.certificates import Certificate
from anju.protocol.keys import se_hmac

#: The keyring secret per-card keys are derived from (kit/keyring.py NAMED_SECRETS).
CARD_SECRET = "access-card"  # noqa: S105 -- the keyring entry's name, not a secret
CARD_KEY_CONTEXT = b"anju/access/card-key/v1|"


class LockKeyUnavailable(Conflict):
    code = "lock_key_unavailable"


def lock_root_key(keys: KeyProvider, device: Device) -> bytes:
    """The lock's root key (the platform's copy of what its SE holds), unwrapped."""
    if device.root_key_wrapped is None:
        raise LockKeyUnavailable(
            "门锁没有可用的根密钥 / the lock has no root key (retired?)",
            details={"device_id": device.id},
        )
    return keys.unwrap(device.root_key_wrapped, root_key_aad(device.id))


def passcode_digest(keys: KeyProvider, device: Device, digits: str) -> str:
    """The hex SE-HMAC of ``digits`` under the lock's root key: what the lock stores too."""
    return se_hmac(lock_root_key(keys, device), PASSCODE_LABEL, digits.encode()).hex()


def card_key(keys: KeyProvider, credential_id: str) -> bytes:
    """The 16-byte key of one card credential: HMAC-SM3(keyring card secret, context ‖ id)."""
    return hmac_sm3(keys.secret(CARD_SECRET), CARD_KEY_CONTEXT + credential_id.encode())[
        :CARD_KEY_BYTES
    ]


def seal_for(keys: KeyProvider, device: Device, record: CredentialRecord) -> str:
    """``record`` signed by the access key and enveloped to the lock's SE (base64)."""
    signer = keys.signer(ACCESS_SIGNER)
    return seal_credential(
        record, device_public_key=SM2PublicKey(device.public_key), sign=signer.sign
    )


def sign_ekey(keys: KeyProvider, token: EKeyToken) -> str:
    """The signed eKey token a phone keeps (base64)."""
    return issue_ekey(token, sign=keys.signer(ACCESS_SIGNER).sign)


def access_certificate(keys: KeyProvider, origin: str, now_s: int) -> Certificate:
    """The ACCESS certificate of the access key, certified by the device CA."""
    return platform_access_certificate(keys, origin=origin, now=now_s)
