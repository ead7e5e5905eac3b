"""Facade over China's national algorithms: SM2 (gmssl-pyx signs; OpenSSL 3 libcrypto verifies when
present, else gmssl-pyx), SM3 and SM4 (``cryptography``).

Everything else in anju calls these functions; no other module imports the libraries directly.
"""

from anju.kit.crypto.random import random_bytes
from anju.kit.crypto.sm2 import (
    DEFAULT_SIGNER_ID,
    SM2PrivateKey,
    SM2PublicKey,
    sm2_z,
)
from anju.kit.crypto.sm3 import HmacSm3, hkdf_sm3, hmac_sm3, hmac_sm3_verify, kdf_sm3, sm3
from anju.kit.crypto.sm4 import (
    SM4_GCM_NONCE_BYTES,
    SM4_GCM_TAG_BYTES,
    SM4_KEY_BYTES,
    sm4_cbc_decrypt,
    sm4_cbc_encrypt,
    sm4_ctr_crypt,
    sm4_ecb_encrypt_block,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

__all__ = [
    "DEFAULT_SIGNER_ID",
    "SM4_GCM_NONCE_BYTES",
    "SM4_GCM_TAG_BYTES",
    "SM4_KEY_BYTES",
    "HmacSm3",
    "SM2PrivateKey",
    "SM2PublicKey",
    "hkdf_sm3",
    "hmac_sm3",
    "hmac_sm3_verify",
    "kdf_sm3",
    "random_bytes",
    "sm2_z",
    "sm3",
    "sm4_cbc_decrypt",
    "sm4_cbc_encrypt",
    "sm4_ctr_crypt",
    "sm4_ecb_encrypt_block",
    "sm4_gcm_decrypt",
    "sm4_gcm_encrypt",
]
