"""Merkle tree of RFC 9162 §2.1 with SM3 in place of SHA-256 (pure functions, no storage).

Leaf hash = SM3(0x00‖data), interior node = SM3(0x01‖left‖right), the hash of the empty tree
is SM3(""). A *perfect* subtree is identified by ``(level, index)``: it covers the leaves
``[index·2^level, (index+1)·2^level)``. Every range the RFC algorithms need is a sequence of
such perfect subtrees, so a store that keeps them answers any proof in O(log n) look-ups.

Proofs are generated as lists of leaf *ranges* first (:func:`inclusion_ranges`,
:func:`consistency_ranges`) so a caller can fetch all the hashes it needs in one query, then
turned into hashes with a ``subtree(start, end)`` callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from anju.kit.crypto import sm3

HASH_BYTES = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = sm3(b"")

Range = tuple[int, int]
SubtreeHash = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof did not verify; the message says why."""


def leaf_hash(data: bytes) -> bytes:
    """SM3(0x00‖data): the hash of one leaf."""
    return sm3(LEAF_PREFIX + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    """SM3(0x01‖left‖right): the hash of an interior node."""
    return sm3(NODE_PREFIX + left + right)


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of a list of leaf hashes, by the recursive definition of RFC 9162 §2.1.1."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = split_point(n)
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)``, left to right, whose fold is MTH(D[start:end]).

    Valid for every range the RFC recursion produces (``start`` is a multiple of a power of two
    at least ``end - start``), and for the whole tree ``[0, n)``.
    """
    if not 0 <= start < end:
        raise ValueError(f"bad range [{start}, {end})")
    out: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        level = (end - pos).bit_length() - 1
        # the block must also be aligned at pos
        while level > 0 and pos % (1 << level):
            level -= 1
        out.append((level, pos >> level))
        pos += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """Combine perfect-subtree hashes (left to right, decreasing size) into the range's MTH."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges whose hashes form PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    out: list[Range] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = split_point(end - start)
        if m < k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start, m = start + k, m - k
    out.reverse()
    return out


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The leaf ranges whose hashes form PROOF(m, D[n]) (RFC 9162 §2.1.4.1), in proof order."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    out: list[Range] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        out.append((start, end))
    out.reverse()
    return out


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """An inclusion proof, given ``subtree(start, end)`` returning MTH(D[start:end])."""
    return [subtree(a, b) for a, b in inclusion_ranges(index, size)]


def consistency_proof(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """A consistency proof, given ``subtree(start, end)`` returning MTH(D[start:end])."""
    return [subtree(a, b) for a, b in consistency_ranges(old_size, new_size)]


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2); ProofError if malformed."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hashes(proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree requires")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check ``leaf`` is at ``index`` in the tree of ``size`` with ``root``; else ProofError."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError("inclusion proof does not lead to the given root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check the tree of ``new_size`` extends the one of ``old_size`` (RFC 9162 §2.1.4.2)."""
    if old_size <= 0:
        raise ProofError("consistency is defined only from a non-empty tree (0 < m)")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    _check_hashes(proof)
    if old_size == new_size:
        if proof:
            raise ProofError("proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("roots differ for the same tree size")
        return
    if not proof:
        raise ProofError("empty consistency proof between different sizes")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the trees allow")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the trees require")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


def _check_hashes(proof: Sequence[bytes]) -> None:
    for h in proof:
        if len(h) != HASH_BYTES:
            raise ProofError(f"proof element of {len(h)} bytes, expected {HASH_BYTES}")


@dataclass(frozen=True)
class Node:
    """A perfect subtree's hash: covers leaves ``[index·2^level, (index+1)·2^level)``."""

    level: int
    index: int
    hash: bytes


def frontier_positions(size: int) -> list[tuple[int, int]]:
    """The ``(level, index)`` of the perfect subtrees of a tree of ``size``, left to right."""
    return perfect_subtrees(0, size) if size else []


@dataclass
class Frontier:
    """The compact range [0, size): one perfect subtree per set bit of ``size``.

    Appending a leaf merges equal-sized subtrees; each merge is an interior node that a store
    keeps so proofs need only look-ups.
    """

    size: int = 0
    nodes: list[Node] = field(default_factory=list)

    @classmethod
    def from_hashes(cls, size: int, hashes: Sequence[bytes]) -> Frontier:
        """Rebuild a frontier from the hashes at :func:`frontier_positions` of ``size``."""
        positions = frontier_positions(size)
        if len(positions) != len(hashes):
            raise ValueError(f"a frontier of size {size} has {len(positions)} hashes")
        return cls(size, [Node(lv, ix, h) for (lv, ix), h in zip(positions, hashes, strict=True)])

    def append(self, leaf: bytes) -> list[Node]:
        """Add a leaf hash; return the interior nodes (level ≥ 1) it completed."""
        created: list[Node] = []
        carry = Node(0, self.size, leaf)
        while self.nodes and self.nodes[-1].level == carry.level:
            left = self.nodes.pop()
            carry = Node(carry.level + 1, left.index >> 1, node_hash(left.hash, carry.hash))
            created.append(carry)
        self.nodes.append(carry)
        self.size += 1
        return created

    def root(self) -> bytes:
        """MTH of the tree so far."""
        return fold([n.hash for n in self.nodes])

    def hashes(self) -> list[bytes]:
        """The frontier's hashes, left to right."""
        return [n.hash for n in self.nodes]

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.nodes))
