"""The signed verification statement: canonical JSON without PI, SM2-signed by the keyring's
``verification`` key, so anyone holding the public key can check a kept result later."""

from __future__ import annotations

import json
from typing import Any

from anju.kit.crypto import SM2PublicKey
from anju.kit.keyring import KeyProvider

VERIFICATION_SIGNER = "verification"
SIGNER_ID = b"anju/people/verification/v1"


def canonical(statement: dict[str, Any]) -> str:
    """Sorted keys, compact separators, UTF-8 (the bytes that are signed)."""
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign_statement(keys: KeyProvider, statement: dict[str, Any]) -> tuple[str, bytes]:
    """The statement's canonical text and its SM2 signature."""
    text = canonical(statement)
    return text, keys.signer(VERIFICATION_SIGNER).sign(text.encode("utf-8"), SIGNER_ID)


def statement_is_authentic(public_key: SM2PublicKey, text: str, signature: bytes) -> bool:
    """Whether ``signature`` is the verification key's signature of ``text``."""
    return public_key.verify(text.encode("utf-8"), signature, SIGNER_ID)
