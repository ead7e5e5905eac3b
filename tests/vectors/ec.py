"""A deliberately plain, independent model of sm2p256v1 arithmetic, for tests only.

It shares no code with ``anju.kit.crypto`` (the curve constants are typed in again from
GB/T 32918.5) so it can re-derive published intermediate values (x2, y2 of the encryption
example) and verify signatures without trusting the code under test. Slow and not constant-time.
"""

from __future__ import annotations


def _h(words: str) -> int:
    """Hex as printed in the standard: 32-bit words separated by spaces."""
    return int(words.replace(" ", ""), 16)


p = _h("FFFFFFFE FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF 00000000 FFFFFFFF FFFFFFFF")
a = p - 3
b = _h("28E9FA9E 9D9F5E34 4D5A9E4B CF6509A7 F39789F5 15AB8F92 DDBCBD41 4D940E93")
n = _h("FFFFFFFE FFFFFFFF FFFFFFFF FFFFFFFF 7203DF6B 21C6052B 53BBF409 39D54123")
G = (
    _h("32C4AE2C 1F198119 5F990446 6A39C994 8FE30BBF F2660BE1 715A4589 334C74C7"),
    _h("BC3736A2 F4F6779C 59BDCEE3 6B692153 D0A9877C C62A4740 02DF32E5 2139F0A0"),
)

Point = tuple[int, int] | None


def on_curve(pt: tuple[int, int]) -> bool:
    x, y = pt
    return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x + a * x + b)) % p == 0


def add(P: Point, Q: Point) -> Point:
    if P is None:
        return Q
    if Q is None:
        return P
    if P[0] == Q[0]:
        if (P[1] + Q[1]) % p == 0:
            return None
        slope = (3 * P[0] * P[0] + a) * pow(2 * P[1], p - 2, p) % p
    else:
        slope = (Q[1] - P[1]) * pow(Q[0] - P[0], p - 2, p) % p
    x = (slope * slope - P[0] - Q[0]) % p
    return x, (slope * (P[0] - x) - P[1]) % p


def mul(k: int, P: Point) -> Point:
    """Left-to-right double-and-add."""
    R: Point = None
    for bit in bin(k % n)[2:]:
        R = add(R, R)
        if bit == "1":
            R = add(R, P)
    return R


def from_bytes(raw: bytes) -> tuple[int, int]:
    """64-byte x‖y or 65-byte 04‖x‖y."""
    if len(raw) == 65 and raw[0] == 4:
        raw = raw[1:]
    pt = (int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    if len(raw) != 64 or not on_curve(pt):
        raise ValueError("not a point on sm2p256v1")
    return pt


def to_bytes(pt: Point) -> bytes:
    assert pt is not None
    return pt[0].to_bytes(32, "big") + pt[1].to_bytes(32, "big")


def verify(e: bytes, r: int, s: int, public: bytes) -> bool:
    """GB/T 32918.2 §7: t = r + s, (x1, y1) = sG + tP, accept iff (e + x1) mod n == r."""
    if not (1 <= r < n and 1 <= s < n):
        return False
    t = (r + s) % n
    if t == 0:
        return False
    pt = add(mul(s, G), mul(t, from_bytes(public)))
    if pt is None:
        return False
    return (int.from_bytes(e, "big") + pt[0]) % n == r


def sign_with_nonce(e: bytes, d: int, k: int) -> tuple[int, int]:
    """GB/T 32918.2 §6 with a given nonce k (to replay the published example)."""
    x1 = mul(k, G)
    assert x1 is not None
    r = (int.from_bytes(e, "big") + x1[0]) % n
    s = pow(1 + d, n - 2, n) * (k - r * d) % n
    return r, s
