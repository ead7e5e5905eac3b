"""Provisioning: products, factory import (一机一密) and dynamic registration (一型一密).

Factory (one device, one key, L14 / R18d): the secure element derives the root key inside
itself and hands the platform one copy at manufacture; the platform stores it only wrapped by
its master key and certifies the SE's public key. Dynamic registration: a device that holds
only its product's shared secret proves it with HMAC-SM3 and receives a certificate plus a
fresh root key encrypted to its own SM2 public key (docs/devices.md).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy.exc

from anju.devices.ca import ca_public_key_pem, issue_device_certificate
from anju.devices.lifecycle import (
    DEVICE_TYPES,
    HEX_ID,
    PRODUCT_KEY,
    ROOT_KEY_BYTES,
    RegistrationRefused,
    Status,
    TooManyRequests,
    product_secret_aad,
    root_key_aad,
)
from anju.devices.models import Device, DeviceProduct, RegistrationNonce
from anju.devices.service import DeviceService, utc_seconds
from anju.errors import Conflict, IntegrityError, InvalidInput, NotFound
from anju.kit.crypto import SM2PublicKey, hmac_sm3_verify, random_bytes
from anju.protocol.certificates import Certificate
from anju.protocol.keys import ROOT_KEY_RANDOM_BYTES, derive_root_key
from anju.protocol.topics import down_topic, up_topic

PRODUCT_SECRET_BYTES = 32
REGISTRATION_WINDOW_SECONDS = 300  # |device time - platform time| allowed
NONCE_BYTES = 16
MAX_PRODUCT_FAILURES = 20  # failed dynamic registrations per product per window...
FAILURE_WINDOW_SECONDS = 3_600  # ...after which the product refuses until the window ends
_U64 = struct.Struct(">Q")


@dataclass(frozen=True)
class FactoryRecord:
    """What the factory hands the platform for one device (the root key only here, once)."""

    device_id: str
    se_id: str
    public_key: SM2PublicKey
    root_key: bytes


@dataclass(frozen=True)
class DynamicRegistration:
    """A device's dynamic-registration request (all ids lowercase hex)."""

    product_key: str
    device_id: str
    se_id: str
    public_key: bytes  # x‖y, 64 bytes
    timestamp: int  # unix seconds
    nonce: bytes  # 16 bytes
    mac: bytes  # HMAC-SM3(product secret, proof_message(...))


@dataclass(frozen=True)
class DynamicRegistrationResult:
    device_id: str
    certificate: Certificate
    root_key_ciphertext: bytes  # SM2-encrypted to the device's public key
    ca_public_key_pem: str


def proof_message(
    device_id: str, se_id: str, public_key: bytes, timestamp: int, nonce: bytes
) -> bytes:
    """device id (16) ‖ SE id (16) ‖ public key x‖y (64) ‖ timestamp (u64) ‖ nonce (16)."""
    return (
        bytes.fromhex(device_id) + bytes.fromhex(se_id) + public_key + _U64.pack(timestamp) + nonce
    )


def device_topics(device_id: str) -> dict[str, str]:
    """The MQTT topics a device publishes to and subscribes to."""
    return {"publish": up_topic(device_id), "subscribe": down_topic(device_id)}


def check_product_key(product_key: str) -> str:
    if not PRODUCT_KEY.match(product_key):
        raise InvalidInput("产品标识须为 1–64 个 a-z 0-9 - / product key: 1–64 of a-z 0-9 -")
    return product_key


def check_device_type(device_type: str) -> str:
    if device_type not in DEVICE_TYPES:
        raise InvalidInput(
            f"未知设备类型 / unknown device type {device_type!r}",
            details={"known_types": list(DEVICE_TYPES)},
        )
    return device_type


def check_request(request: DynamicRegistration) -> SM2PublicKey:
    """Shape checks of a dynamic-registration request; returns its public key."""
    check_product_key(request.product_key)
    if not HEX_ID.match(request.device_id) or not HEX_ID.match(request.se_id):
        raise InvalidInput("设备与安全芯片标识须为 32 位十六进制 / ids: 32 lowercase hex")
    if len(request.nonce) != NONCE_BYTES or len(request.mac) != 32:
        raise InvalidInput("随机数须为 16 字节，MAC 须为 32 字节 / nonce 16 bytes, mac 32 bytes")
    if not 0 <= request.timestamp < 1 << 63:
        raise InvalidInput("时间戳无效 / invalid timestamp")
    if len(request.public_key) != 64:
        raise InvalidInput("公钥须为 64 字节 x‖y / the public key must be 64 bytes x‖y")
    try:
        return SM2PublicKey(request.public_key)
    except IntegrityError:
        raise InvalidInput("公钥不是 SM2 曲线上的点 / not a valid SM2 public key") from None


class ProvisioningService(DeviceService):
    """Products, factory import and dynamic registration."""

    # --- products --------------------------------------------------------------------------
    async def create_product(
        self,
        product_key: str,
        device_type: str,
        name: str,
        *,
        dynamic_registration: bool = False,
        actor: str = "cli",
    ) -> tuple[DeviceProduct, bytes | None]:
        """A new product; with dynamic registration its secret is returned (shown once)."""
        check_product_key(product_key)
        check_device_type(device_type)
        name = name.strip()
        if not 1 <= len(name) <= 100:
            raise InvalidInput("产品名称须为 1–100 个字符 / product name: 1–100 characters")
        if await self.repo.product(product_key) is not None:
            raise Conflict("产品已存在 / the product already exists")
        product = DeviceProduct(
            product_key=product_key,
            device_type=device_type,
            name=name,
            dynamic_registration=False,
            failure_count=0,
            created_at=self.clock.now(),
        )
        self.session.add(product)
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="devices.product.created",
            actor=actor,
            target=f"product:{product_key}",
            details={"device_type": device_type},
        )
        secret = None
        if dynamic_registration:
            secret = await self.set_dynamic_registration(product_key, True, actor=actor)
        return product, secret

    async def set_dynamic_registration(
        self, product_key: str, enabled: bool, *, actor: str = "cli", new_secret: bool = False
    ) -> bytes | None:
        """Enable or disable 一型一密 for a product; a newly made secret is returned once."""
        product = await self.repo.product(check_product_key(product_key), for_update=True)
        if product is None:
            raise NotFound("产品不存在 / no such product")
        secret: bytes | None = None
        if enabled and (product.product_secret_wrapped is None or new_secret):
            secret = random_bytes(PRODUCT_SECRET_BYTES)
            product.product_secret_wrapped = self.keys.wrap(secret, product_secret_aad(product_key))
        product.dynamic_registration = enabled
        product.failure_count = 0
        product.failure_window_start = None
        await self.session.flush()
        await self.audit.record(
            self.session,
            action="devices.product.dynamic_registration",
            actor=actor,
            target=f"product:{product_key}",
            details={"enabled": enabled, "new_secret": secret is not None},
        )
        return secret

    async def product_for_manufacture(self, product_key: str, device_type: str | None) -> str:
        """The product's device type, creating the product (factory only) when it is new."""
        product = await self.repo.product(check_product_key(product_key))
        if product is None:
            created, _ = await self.create_product(
                product_key, device_type or "lock", product_key, actor="cli"
            )
            return created.device_type
        if device_type is not None and device_type != product.device_type:
            raise Conflict(
                f"产品 {product_key} 的设备类型是 {product.device_type} / product {product_key} "
                f"makes {product.device_type} devices, not {device_type}"
            )
        return product.device_type

    # --- factory import --------------------------------------------------------------------
    async def import_factory_records(
        self, product_key: str, records: list[FactoryRecord], *, actor: str = "cli"
    ) -> list[Device]:
        """Store manufactured devices: certify each SE key and wrap each root key."""
        product = await self.repo.product(check_product_key(product_key))
        if product is None:
            raise NotFound("产品不存在 / no such product")
        devices = []
        for record in records:
            devices.append(await self._admit(product, record, provisioning="factory", actor=actor))
        await self.audit.record(
            self.session,
            action="devices.manufactured",
            actor=actor,
            target=f"product:{product_key}",
            details={"count": len(devices), "product": product_key},
        )
        return devices

    async def _admit(
        self, product: DeviceProduct, record: FactoryRecord, *, provisioning: str, actor: str
    ) -> Device:
        if not HEX_ID.match(record.device_id) or not HEX_ID.match(record.se_id):
            raise InvalidInput("设备与安全芯片标识须为 32 位十六进制 / ids: 32 lowercase hex")
        if len(record.root_key) != ROOT_KEY_BYTES:
            raise InvalidInput("根密钥须为 16 字节 / the root key must be 16 bytes")
        if await self.repo.device(record.device_id) is not None:
            raise Conflict("设备标识已存在 / device id already exists")
        if await self.repo.device_by_se_id(record.se_id) is not None:
            raise Conflict("安全芯片标识已存在 / secure element id already exists")
        now = self.clock.now()
        cert = issue_device_certificate(
            self.keys,
            device_id=record.device_id,
            se_id=record.se_id,
            product=product.product_key,
            public_key=record.public_key,
            now=utc_seconds(now),
        )
        device = Device(
            id=record.device_id,
            device_type=product.device_type,
            product_key=product.product_key,
            se_id=record.se_id,
            public_key=record.public_key.raw,
            status=Status.MANUFACTURED,
            provisioning=provisioning,
            certificate=cert.encode(),
            cert_serial=cert.serial.hex(),
            cert_not_after=_from_unix(cert.not_after),
            root_key_wrapped=self.keys.wrap(record.root_key, root_key_aad(record.device_id)),
            claim_failures=0,
            online=False,
            attributes="{}",
            reported="{}",
            created_at=now,
            updated_at=now,
        )
        self.session.add(device)
        await self.session.flush()
        await self.record_operation(
            device,
            actor=actor,
            operation="manufactured",
            details={"provisioning": provisioning, "cert_serial": device.cert_serial},
        )
        return device

    # --- dynamic registration (一型一密) ----------------------------------------------------
    async def register_dynamic(self, request: DynamicRegistration) -> DynamicRegistrationResult:
        """Admit a device that proves knowledge of its product's secret (no login)."""
        public_key = check_request(request)
        product = await self.repo.product(request.product_key, for_update=True)
        if product is None or product.product_secret_wrapped is None:
            raise self._refuse(request, "bad_proof", product=None)
        now = self.clock.now()
        if (
            product.failure_window_start is not None
            and (now - product.failure_window_start).total_seconds() < FAILURE_WINDOW_SECONDS
            and product.failure_count >= MAX_PRODUCT_FAILURES
        ):
            raise self._refuse(request, "throttled", product=None)
        if not product.dynamic_registration:
            raise self._refuse(request, "disabled", product=None)
        secret = self.keys.unwrap(
            product.product_secret_wrapped, product_secret_aad(product.product_key)
        )
        message = proof_message(
            request.device_id, request.se_id, request.public_key, request.timestamp, request.nonce
        )
        if not hmac_sm3_verify(secret, message, request.mac):
            raise self._refuse(request, "bad_proof", product=product)
        if abs(utc_seconds(now) - request.timestamp) > REGISTRATION_WINDOW_SECONDS:
            raise self._refuse(request, "stale_time", product=product)
        await self._remember_nonce(request, product)
        device = await self.repo.device(request.device_id, for_update=True)
        if device is not None and not self._same_pending_device(device, request):
            raise self._refuse(request, "already_registered", product=product)
        if device is None and await self.repo.device_by_se_id(request.se_id) is not None:
            raise self._refuse(request, "already_registered", product=product)
        root_key = derive_root_key(
            request.se_id, request.device_id, random_bytes(ROOT_KEY_RANDOM_BYTES)
        )
        if device is None:
            record = FactoryRecord(request.device_id, request.se_id, public_key, root_key)
            device = await self._admit(product, record, provisioning="dynamic", actor="device")
        else:
            await self._reissue(device, product, public_key, root_key)
        cert = Certificate.decode(device.certificate)
        await self.audit.record(
            self.session,
            action="devices.provisioned",
            actor=f"device:{device.id}",
            target=f"device:{device.id}",
            details={"product": product.product_key, "cert_serial": device.cert_serial},
        )
        return DynamicRegistrationResult(
            device_id=device.id,
            certificate=cert,
            root_key_ciphertext=public_key.encrypt(root_key),
            ca_public_key_pem=ca_public_key_pem(self.keys),
        )

    @staticmethod
    def _same_pending_device(device: Device, request: DynamicRegistration) -> bool:
        """A retry of an earlier registration whose answer the device lost (not yet claimed)."""
        return (
            device.status == Status.MANUFACTURED
            and device.provisioning == "dynamic"
            and device.se_id == request.se_id
            and device.product_key == request.product_key
            and device.public_key == request.public_key
        )

    async def _reissue(
        self, device: Device, product: DeviceProduct, public_key: SM2PublicKey, root_key: bytes
    ) -> None:
        now = self.clock.now()
        cert = issue_device_certificate(
            self.keys,
            device_id=device.id,
            se_id=device.se_id,
            product=product.product_key,
            public_key=public_key,
            now=utc_seconds(now),
        )
        device.certificate = cert.encode()
        device.cert_serial = cert.serial.hex()
        device.cert_not_after = _from_unix(cert.not_after)
        device.root_key_wrapped = self.keys.wrap(root_key, root_key_aad(device.id))
        device.updated_at = now
        await self.session.flush()
        await self.record_operation(
            device,
            actor="device",
            operation="reprovisioned",
            details={"cert_serial": device.cert_serial},
        )

    async def _remember_nonce(self, request: DynamicRegistration, product: DeviceProduct) -> None:
        now = self.clock.now()
        await self.repo.forget_nonces_before(
            now - timedelta(seconds=2 * REGISTRATION_WINDOW_SECONDS)
        )
        nonce = request.nonce.hex()
        if await self.repo.nonce_seen(product.product_key, nonce):
            raise self._refuse(request, "replay", product=product)
        self.session.add(
            RegistrationNonce(product_key=product.product_key, nonce=nonce, seen_at=now)
        )
        try:
            await self.session.flush()
        except sqlalchemy.exc.IntegrityError:  # a concurrent request with the same nonce won
            raise self._refuse(request, "replay", product=product) from None

    def _refuse(
        self, request: DynamicRegistration, reason: str, *, product: DeviceProduct | None
    ) -> RegistrationRefused | TooManyRequests:
        """The error to raise; counts the failure against the product and audits it."""
        counted = product is not None and reason in ("bad_proof", "stale_time", "replay")
        product_key = request.product_key

        async def effect(svc: DeviceService) -> None:
            failures: int | None = None
            if counted:
                row = await svc.repo.product(product_key, for_update=True)
                if row is not None:
                    now = svc.clock.now()
                    start = row.failure_window_start
                    if start is None or (now - start).total_seconds() >= FAILURE_WINDOW_SECONDS:
                        row.failure_window_start = now
                        row.failure_count = 0
                    row.failure_count += 1
                    failures = row.failure_count
            await svc.audit.record(
                svc.session,
                action="devices.provisioning.refused",
                actor="device",
                target=f"product:{product_key}"[:200],
                outcome="failure",
                details={"reason": reason, "failures": failures},
            )

        self.after_rollback(effect)
        if reason == "throttled":
            return TooManyRequests(
                "该产品注册失败过多，请稍后再试 / too many failed registrations for this product; "
                "try again later",
                details={"retry_after_seconds": FAILURE_WINDOW_SECONDS},
            )
        messages = {
            "bad_proof": "注册证明无效 / the registration proof is not valid",
            "disabled": "该产品未开启动态注册 / dynamic registration is disabled for this product",
            "stale_time": "时间戳超出允许范围 / the timestamp is outside the accepted window",
            "replay": "随机数已使用 / this nonce was used before",
            "already_registered": "设备已注册 / this device or secure element is registered",
        }
        return RegistrationRefused(messages[reason], details={"reason": reason})


def _from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
