"""The regulator wire format: canonical payload, SM2 signature, then an SM4-GCM envelope whose
fresh key is SM2-encrypted to the regulator's public key (L3: sign, then encrypt).

Pure functions, no I/O; the sender and the fake regulator both use them::

    signed   = {"payload": P, "signer_key": fp(platform key), "signature": b64(SM2(canonical(P)))}
    envelope = {"format": ENVELOPE_FORMAT, "report_id": P.report_id, "recipient_key": fp(reg),
                "wrapped_key": b64(SM2-encrypt(reg, K)), "nonce": b64(N),
                "ciphertext": b64(SM4-GCM(K, N, canonical(signed), AAD))}
    AAD      = ENVELOPE_FORMAT | 0x00 | report_id | 0x00 | recipient_key

``fp`` is the hex SM3 fingerprint of the SubjectPublicKeyInfo. K (16 bytes) and N (12 bytes) are
fresh for every envelope, also for every retry of the same report.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from anju.errors import IntegrityError, InvalidInput
from anju.kit.crypto import (
    SM4_GCM_NONCE_BYTES,
    SM4_KEY_BYTES,
    SM2PrivateKey,
    SM2PublicKey,
    random_bytes,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from anju.kit.keyring import Signer

PAYLOAD_FORMAT = "anju-regulator-report/1"
ENVELOPE_FORMAT = "anju-regulator-envelope/1"
#: The keyring's signing key for reports (``anju db upgrade`` adds it to older keyrings).
REPORT_SIGNER = "regulator-report"
IDEMPOTENCY_HEADER = "Idempotency-Key"
PATH = "/reports"
MAX_ENVELOPE_BYTES = 2 * 1024 * 1024


def canonical(value: dict[str, Any]) -> bytes:
    """The signed bytes: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _aad(report_id: str, recipient: str) -> bytes:
    return b"\x00".join((ENVELOPE_FORMAT.encode(), report_id.encode(), recipient.encode()))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput(f"信封字段缺失 / envelope field {name} missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"信封字段格式错误 / envelope field {name} is not base64") from None


def seal_report(payload: dict[str, Any], signer: Signer, regulator: SM2PublicKey) -> bytes:
    """Sign ``payload`` with ``signer``, then envelope it to ``regulator``: the HTTP body."""
    report_id = str(payload["report_id"])
    signed = {
        "payload": payload,
        "signer_key": signer.public_key.fingerprint(),
        "signature": _b64(signer.sign(canonical(payload))),
    }
    recipient = regulator.fingerprint()
    key = random_bytes(SM4_KEY_BYTES)
    nonce = random_bytes(SM4_GCM_NONCE_BYTES)
    envelope = {
        "format": ENVELOPE_FORMAT,
        "report_id": report_id,
        "recipient_key": recipient,
        "wrapped_key": _b64(regulator.encrypt(key)),
        "nonce": _b64(nonce),
        "ciphertext": _b64(
            sm4_gcm_encrypt(key, nonce, canonical(signed), _aad(report_id, recipient))
        ),
    }
    return canonical(envelope)


def open_report(body: bytes, regulator: SM2PrivateKey, platform: SM2PublicKey) -> dict[str, Any]:
    """The payload of an envelope, if it opens with ``regulator`` and ``platform`` signed it.

    ``InvalidInput`` for a malformed envelope; ``IntegrityError`` when it is addressed to another
    key, does not decrypt, or its signature does not verify (tampered or forged).
    """
    if len(body) > MAX_ENVELOPE_BYTES:
        raise InvalidInput("报送过大 / envelope too large")
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("信封不是 JSON / the envelope is not JSON") from None
    if not isinstance(envelope, dict) or envelope.get("format") != ENVELOPE_FORMAT:
        raise InvalidInput("未知的信封格式 / unknown envelope format")
    report_id = envelope.get("report_id")
    recipient = regulator.public_key.fingerprint()
    if not isinstance(report_id, str) or not report_id:
        raise InvalidInput("信封缺少报送编号 / envelope without report_id")
    if envelope.get("recipient_key") != recipient:
        raise IntegrityError("信封不是发给本机构的 / the envelope is for another key")
    key = regulator.decrypt(_unb64(envelope.get("wrapped_key"), "wrapped_key"))
    nonce = _unb64(envelope.get("nonce"), "nonce")
    if len(key) != SM4_KEY_BYTES or len(nonce) != SM4_GCM_NONCE_BYTES:
        raise IntegrityError("信封密钥或随机数长度错误 / bad envelope key or nonce length")
    sealed = _unb64(envelope.get("ciphertext"), "ciphertext")
    signed = json.loads(sm4_gcm_decrypt(key, nonce, sealed, _aad(report_id, recipient)))
    payload, signature = signed.get("payload"), signed.get("signature")
    if not isinstance(payload, dict) or signed.get("signer_key") != platform.fingerprint():
        raise IntegrityError("报送不是由受信任的平台签名 / not signed by the trusted platform")
    if not platform.verify(canonical(payload), _unb64(signature, "signature")):
        raise IntegrityError("报送签名无效 / the report's signature does not verify")
    if payload.get("report_id") != report_id or payload.get("format") != PAYLOAD_FORMAT:
        raise IntegrityError("报送编号或格式不符 / report id or format mismatch")
    return payload
