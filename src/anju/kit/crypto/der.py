"""The few DER (X.690) constructions SM2 keys, signatures and ciphertexts need; strict decoding."""

from __future__ import annotations

from anju.errors import IntegrityError

INTEGER, BIT_STRING, OCTET_STRING, OID, SEQUENCE = 0x02, 0x03, 0x04, 0x06, 0x30


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    """Encode one tag-length-value."""
    return bytes([tag]) + _length(len(value)) + value


def integer(value: int) -> bytes:
    """Encode a non-negative INTEGER."""
    if value < 0:
        raise ValueError("only non-negative integers")
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return tlv(INTEGER, body)


def oid(dotted: str) -> bytes:
    """Encode an OBJECT IDENTIFIER from dotted form."""
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(chunk))
    return tlv(OID, bytes(out))


def sequence(*items: bytes) -> bytes:
    """Encode a SEQUENCE of already-encoded items."""
    return tlv(SEQUENCE, b"".join(items))


def read_tlv(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """Decode one TLV at ``offset``; returns (tag, value, next offset). Raises IntegrityError."""
    try:
        tag = data[offset]
        first = data[offset + 1]
        pos = offset + 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0 or count > 4:
                raise IntegrityError("DER length form not supported")
            length = int.from_bytes(data[pos : pos + count], "big")
            if length < 0x80 or data[pos] == 0:
                raise IntegrityError("DER length is not minimal")
            pos += count
    except IndexError:
        raise IntegrityError("DER input is truncated") from None
    end = pos + length
    if end > len(data):
        raise IntegrityError("DER input is truncated")
    return tag, data[pos:end], end


def read_sequence(data: bytes) -> list[tuple[int, bytes]]:
    """Decode a whole-buffer SEQUENCE into its (tag, value) children."""
    tag, body, end = read_tlv(data)
    if tag != SEQUENCE or end != len(data):
        raise IntegrityError("expected exactly one DER SEQUENCE")
    items: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(body):
        t, v, pos = read_tlv(body, pos)
        items.append((t, v))
    return items


def read_integer(tag: int, value: bytes) -> int:
    """Decode an INTEGER value (non-negative, minimal)."""
    if tag != INTEGER or not value or value[0] & 0x80:
        raise IntegrityError("expected a non-negative DER INTEGER")
    if len(value) > 1 and value[0] == 0 and not value[1] & 0x80:
        raise IntegrityError("DER INTEGER is not minimal")
    return int.from_bytes(value, "big")
