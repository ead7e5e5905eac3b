"""The device CA: certifies devices, the gateway, firmware signers and the access key with the
keyring's "device-ca" SM2 key.

The CA key never leaves the key provider (an HSM in production signs inside); device makers get
only its public key (:func:`ca_public_key_pem`). Validity periods are constants here (see
docs/devices.md): devices 10 years, the gateway 1 year, re-issued in its last 30 days, firmware
signers 5 years (docs/firmware.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anju.kit.clock import Clock
from anju.kit.crypto import SM2PublicKey
from anju.kit.keyring import KeyProvider
from anju.protocol.certificates import Certificate, CertKind, issue_certificate
from anju.protocol.firmware import ANY_PRODUCT

CA_SIGNER = "device-ca"
GATEWAY_SIGNER = "device-gateway"
FIRMWARE_SIGNER = "firmware"
ACCESS_SIGNER = "access"
DAY = 86_400
DEVICE_CERT_DAYS = 3_653  # ten years: a lock's service life; revocation is by registry status
GATEWAY_CERT_DAYS = 365
GATEWAY_RENEW_DAYS = 30  # re-issue the gateway certificate when it has less left than this
FIRMWARE_CERT_DAYS = 1_826  # five years: a package installs only while its signer's is valid
ACCESS_CERT_DAYS = 1_826  # five years: credentials and eKeys verify only while it is valid
BACKDATE_SECONDS = 300  # not_before slightly in the past: device clocks drift


def ca_public_key(keys: KeyProvider) -> SM2PublicKey:
    """The CA public key devices verify the gateway certificate with (the trust root, R15)."""
    return keys.signer(CA_SIGNER).public_key


def ca_public_key_pem(keys: KeyProvider) -> str:
    """The CA public key as SubjectPublicKeyInfo PEM, for device makers."""
    return ca_public_key(keys).to_pem()


def _origin_host(origin: str) -> str:
    return origin.split("/", 1)[0].strip().lower() or "anju.local"


def gateway_name(origin: str) -> str:
    """The gateway certificate subject: ``gateway.<host of the platform origin>``."""
    return f"gateway.{_origin_host(origin)}"[:64]


def firmware_signer_name(origin: str) -> str:
    """The platform firmware signer's certificate subject: ``firmware.<host of the origin>``."""
    return f"firmware.{_origin_host(origin)}"[:64]


def certify_firmware_signer(
    keys: KeyProvider,
    public_key: SM2PublicKey,
    *,
    name: str,
    now: int,
    product: str = ANY_PRODUCT,
) -> Certificate:
    """A FIRMWARE certificate for a signing key: the platform's own, or an offline signer's
    (``product`` limits it to one product; the default signs for every product)."""
    return issue_certificate(
        keys.signer(CA_SIGNER),
        kind=CertKind.FIRMWARE,
        subject=name,
        se_id="",
        product=product,
        public_key=public_key,
        not_before=now - BACKDATE_SECONDS,
        not_after=now + FIRMWARE_CERT_DAYS * DAY,
    )


def platform_firmware_certificate(keys: KeyProvider, *, origin: str, now: int) -> Certificate:
    """A fresh certificate for the keyring's "firmware" key (``anju firmware sign``)."""
    return certify_firmware_signer(
        keys, keys.signer(FIRMWARE_SIGNER).public_key, name=firmware_signer_name(origin), now=now
    )


def platform_access_certificate(keys: KeyProvider, *, origin: str, now: int) -> Certificate:
    """An ACCESS certificate for the keyring's "access" key, which signs credentials and eKeys
    (locks check it against the CA they trust; docs/protocol.md, "Access control")."""
    return issue_certificate(
        keys.signer(CA_SIGNER),
        kind=CertKind.ACCESS,
        subject=f"access.{_origin_host(origin)}"[:64],
        se_id="",
        product=ANY_PRODUCT,
        public_key=keys.signer(ACCESS_SIGNER).public_key,
        not_before=now - BACKDATE_SECONDS,
        not_after=now + ACCESS_CERT_DAYS * DAY,
    )


def issue_device_certificate(
    keys: KeyProvider,
    *,
    device_id: str,
    se_id: str,
    product: str,
    public_key: SM2PublicKey,
    now: int,
) -> Certificate:
    """A device certificate binding the device and SE ids to the SE's public key."""
    return issue_certificate(
        keys.signer(CA_SIGNER),
        kind=CertKind.DEVICE,
        subject=device_id,
        se_id=se_id,
        product=product,
        public_key=public_key,
        not_before=now - BACKDATE_SECONDS,
        not_after=now + DEVICE_CERT_DAYS * DAY,
    )


@dataclass
class GatewayCertificates:
    """Holds the gateway's certificate and re-issues it near expiry (one per gateway process)."""

    keys: KeyProvider
    clock: Clock
    origin: str
    product: str = "anju-gateway"
    _current: Certificate | None = field(default=None, init=False, repr=False)

    def current(self) -> Certificate:
        """A valid gateway certificate for the "device-gateway" key, issued or renewed as due."""
        now = int(self.clock.now().timestamp())
        cert = self._current
        gateway_key = self.keys.signer(GATEWAY_SIGNER).public_key
        if (
            cert is None
            or cert.public_key != gateway_key
            or cert.not_after - now < GATEWAY_RENEW_DAYS * DAY
        ):
            cert = issue_certificate(
                self.keys.signer(CA_SIGNER),
                kind=CertKind.GATEWAY,
                subject=gateway_name(self.origin),
                se_id="",
                product=self.product,
                public_key=gateway_key,
                not_before=now - BACKDATE_SECONDS,
                not_after=now + GATEWAY_CERT_DAYS * DAY,
            )
            self._current = cert
        return cert
