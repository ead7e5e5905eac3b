"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed-note envelopes, signed with SM2.

A note is ``<body>\\n<signature lines>``; the body is::

    <origin>\\n<tree size>\\n<base64 root>\\n

and each signature line is ``— <key name> <base64(key id ‖ signature)>\\n`` (U+2014 EM DASH).
The signature is SM2 (GB/T 32918, signer id 1234567812345678) over exactly the body bytes, DER
encoded, so ``openssl pkeyutl -verify -rawin -digest sm3`` checks it. Where C2SP uses SHA-256
and registered signature types, anju uses SM3 and the private-use type byte 0xFF:
key id = SM3(key name ‖ 0x0A ‖ 0xFF ‖ SubjectPublicKeyInfo DER)[:4].
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from anju.errors import IntegrityError
from anju.kit.crypto import DEFAULT_SIGNER_ID, SM2PublicKey, sm3
from anju.kit.keyring import Signer

SIGNATURE_TYPE = 0xFF
SIGNATURE_PREFIX = "\u2014 "  # "— "
KEY_ID_BYTES = 4


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, size and root hash."""

    origin: str
    size: int
    root: bytes

    def body(self) -> bytes:
        """The exact bytes that are signed."""
        return checkpoint_body(self.origin, self.size, self.root)


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a note."""

    key_name: str
    key_id: bytes
    signature: bytes


def checkpoint_body(origin: str, size: int, root: bytes) -> bytes:
    """``<origin>\\n<size>\\n<base64 root>\\n`` as UTF-8."""
    if not origin or "\n" in origin or any(c.isspace() for c in origin):
        raise ValueError("checkpoint origin must be one non-empty line without spaces")
    if size < 0:
        raise ValueError("tree size must not be negative")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n".encode()


def key_id(key_name: str, public_key: SM2PublicKey) -> bytes:
    """The 4-byte key id: SM3(name ‖ 0x0A ‖ 0xFF ‖ SPKI DER)[:4]."""
    return sm3(key_name.encode() + b"\n" + bytes([SIGNATURE_TYPE]) + public_key.to_der())[
        :KEY_ID_BYTES
    ]


def sign_checkpoint(checkpoint: Checkpoint, key_name: str, signer: Signer) -> str:
    """The signed note text for ``checkpoint``."""
    if not key_name or any(c.isspace() or c == "+" for c in key_name):
        raise ValueError("key name must be non-empty without spaces or '+'")
    body = checkpoint.body()
    signature = signer.sign(body, DEFAULT_SIGNER_ID)
    blob = base64.b64encode(key_id(key_name, signer.public_key) + signature).decode()
    return body.decode() + "\n" + f"{SIGNATURE_PREFIX}{key_name} {blob}\n"


def split_note(note: str) -> tuple[bytes, list[NoteSignature]]:
    """Split a note into its body bytes and signature lines; IntegrityError when malformed."""
    body, sep, sigs = note.partition("\n\n")
    if not sep or not body:
        raise IntegrityError("checkpoint note has no blank line before its signatures")
    if not sigs.endswith("\n"):
        raise IntegrityError("checkpoint note does not end with a newline")
    out: list[NoteSignature] = []
    for line in sigs[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise IntegrityError("checkpoint note signature line does not start with '— '")
        name, _, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            blob = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise IntegrityError("checkpoint note signature is not valid base64") from None
        if not name or len(blob) <= KEY_ID_BYTES:
            raise IntegrityError("checkpoint note signature line is malformed")
        out.append(NoteSignature(name, blob[:KEY_ID_BYTES], blob[KEY_ID_BYTES:]))
    return (body + "\n").encode(), out


def parse_body(body: bytes) -> Checkpoint:
    """Parse ``<origin>\\n<size>\\n<base64 root>\\n[extension lines]``."""
    try:
        lines = body.decode().split("\n")
        origin, size_text, root_b64 = lines[0], lines[1], lines[2]
        size = int(size_text)
        root = base64.b64decode(root_b64, validate=True)
    except (UnicodeDecodeError, IndexError, ValueError, binascii.Error):
        raise IntegrityError("checkpoint body is malformed") from None
    if size < 0 or not size_text.isdigit() or str(size) != size_text or len(root) != 32:
        raise IntegrityError("checkpoint body has a bad size or root")
    return Checkpoint(origin, size, root)


def verify_note(note: str, key_name: str, public_key: SM2PublicKey) -> Checkpoint:
    """The checkpoint of a note that carries a valid signature by this key; else IntegrityError."""
    body, signatures = split_note(note)
    expected_id = key_id(key_name, public_key)
    mine = [s for s in signatures if s.key_name == key_name and s.key_id == expected_id]
    if not mine:
        raise IntegrityError(f"checkpoint note has no signature by key {key_name!r}")
    if not any(public_key.verify(body, s.signature, DEFAULT_SIGNER_ID) for s in mine):
        raise IntegrityError(f"checkpoint note signature by {key_name!r} does not verify")
    return parse_body(body)
