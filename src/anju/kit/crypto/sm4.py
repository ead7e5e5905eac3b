"""SM4 block cipher (GB/T 32907) in GCM (RFC 8998), CTR and CBC modes, via ``cryptography``."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from anju.errors import IntegrityError

SM4_KEY_BYTES = 16
SM4_BLOCK_BYTES = 16
SM4_GCM_NONCE_BYTES = 12
SM4_GCM_TAG_BYTES = 16


def _check_key(key: bytes) -> None:
    if len(key) != SM4_KEY_BYTES:
        raise ValueError(f"SM4 key must be {SM4_KEY_BYTES} bytes, got {len(key)}")


def sm4_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """SM4-GCM encrypt; returns ``ciphertext || tag`` (16-byte tag)."""
    _check_key(key)
    if len(nonce) != SM4_GCM_NONCE_BYTES:
        raise ValueError("SM4-GCM nonce must be 12 bytes")
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    if aad:
        enc.authenticate_additional_data(aad)
    return enc.update(plaintext) + enc.finalize() + enc.tag


def sm4_gcm_decrypt(key: bytes, nonce: bytes, sealed: bytes, aad: bytes = b"") -> bytes:
    """SM4-GCM decrypt ``ciphertext || tag``; raises IntegrityError unless it authenticates."""
    _check_key(key)
    if len(nonce) != SM4_GCM_NONCE_BYTES or len(sealed) < SM4_GCM_TAG_BYTES:
        raise IntegrityError("SM4-GCM input is malformed")
    body, tag = sealed[:-SM4_GCM_TAG_BYTES], sealed[-SM4_GCM_TAG_BYTES:]
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    if aad:
        dec.authenticate_additional_data(aad)
    try:
        return dec.update(body) + dec.finalize()
    except InvalidTag:
        raise IntegrityError(
            "ciphertext did not authenticate (tampered, wrong key or wrong context)"
        ) from None


def sm4_ctr_crypt(key: bytes, counter_block: bytes, data: bytes) -> bytes:
    """SM4-CTR (encryption and decryption are the same operation). No integrity: pair with a MAC."""
    _check_key(key)
    c = Cipher(algorithms.SM4(key), modes.CTR(counter_block)).encryptor()
    return c.update(data) + c.finalize()


def sm4_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC with PKCS#7 padding. No integrity: for interoperability only."""
    _check_key(key)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    c = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return c.update(padded) + c.finalize()


def sm4_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Inverse of :func:`sm4_cbc_encrypt`; raises IntegrityError on bad padding."""
    _check_key(key)
    if not ciphertext or len(ciphertext) % SM4_BLOCK_BYTES:
        raise IntegrityError("SM4-CBC ciphertext length is not a positive multiple of 16")
    d = Cipher(algorithms.SM4(key), modes.CBC(iv)).decryptor()
    padded = d.update(ciphertext) + d.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise IntegrityError("SM4-CBC padding is invalid") from None


def sm4_ecb_encrypt_block(key: bytes, block: bytes) -> bytes:
    """One raw SM4 block encryption (for the GB/T 32907 known-answer tests)."""
    _check_key(key)
    if len(block) != SM4_BLOCK_BYTES:
        raise ValueError("SM4 block must be 16 bytes")
    c = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()  # noqa: S305 - single-block KAT only
    return c.update(block) + c.finalize()
