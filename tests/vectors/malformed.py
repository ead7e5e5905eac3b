"""Malformed SM2 signatures (DER and range errors) every verifier must reject quietly."""

from __future__ import annotations

from anju.kit.crypto import der
from anju.kit.crypto.sm2 import N, rs_to_signature
from tests import vectors as v


def malformed_signatures() -> list[tuple[str, bytes]]:
    r, s = v.SM2_R, v.SM2_S
    good = rs_to_signature(r, s)
    body = der.integer(r) + der.integer(s)
    return [
        ("empty", b""),
        ("garbage", b"not a signature"),
        ("raw r||s", r.to_bytes(32, "big") + s.to_bytes(32, "big")),
        ("truncated", good[:-1]),
        ("trailing byte", good + b"\x00"),
        ("trailing sequence", good + good),
        ("r = 0", rs_to_signature(0, s)),
        ("s = 0", rs_to_signature(r, 0)),
        ("r = n", rs_to_signature(N, s)),
        ("s = n", rs_to_signature(r, N)),
        ("s = n + s", rs_to_signature(r, N + s)),
        ("r = 2^256", rs_to_signature(1 << 256, s)),
        ("negative r", der.sequence(der.tlv(der.INTEGER, b"\x80" + bytes(31)), der.integer(s))),
        ("non-minimal r", der.sequence(der.tlv(der.INTEGER, b"\x00" + bytes([1])), der.integer(s))),
        ("empty integer", der.sequence(der.tlv(der.INTEGER, b""), der.integer(s))),
        ("only r", der.sequence(der.integer(r))),
        ("three integers", der.sequence(der.integer(r), der.integer(s), der.integer(1))),
        ("octet strings", der.sequence(der.tlv(4, r.to_bytes(32, "big")), der.integer(s))),
        ("SET instead of SEQUENCE", b"\x31" + good[1:]),
        ("long-form length", b"\x30\x81" + bytes([len(body)]) + body),
        ("indefinite length", b"\x30\x80" + body + b"\x00\x00"),
        ("length too long", b"\x30" + bytes([len(body) + 1]) + body),
        ("length too short", b"\x30" + bytes([len(body) - 1]) + body),
    ]
