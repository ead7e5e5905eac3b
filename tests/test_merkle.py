"""RFC 9162 Merkle tree over SM3: roots, frontier appends, inclusion and consistency proofs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anju.kit import merkle
from anju.kit.crypto import sm3
from anju.kit.merkle import ProofError

pytestmark = pytest.mark.req("L17", "F1")


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def subtree_of(hashes: list[bytes]) -> Callable[[int, int], bytes]:
    return lambda a, b: merkle.root_of(hashes[a:b])


def test_hashes_are_domain_separated_sm3() -> None:
    sm3_of_empty = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"  # GB/T 32905
    assert merkle.EMPTY_ROOT.hex() == sm3_of_empty
    assert merkle.leaf_hash(b"abc") == sm3(b"\x00abc")
    assert merkle.node_hash(b"L" * 32, b"R" * 32) == sm3(b"\x01" + b"L" * 32 + b"R" * 32)
    assert merkle.leaf_hash(b"") != merkle.EMPTY_ROOT


def test_small_trees_follow_the_rfc_shape() -> None:
    a, b, c, d, e = leaves(5)
    n = merkle.node_hash
    assert merkle.root_of([]) == merkle.EMPTY_ROOT
    assert merkle.root_of([a]) == a
    assert merkle.root_of([a, b, c]) == n(n(a, b), c)
    assert merkle.root_of([a, b, c, d, e]) == n(n(n(a, b), n(c, d)), e)


def test_incremental_frontier_matches_recursive_root_for_sizes_0_to_300() -> None:
    hashes = leaves(300)
    frontier = merkle.Frontier()
    stored: dict[tuple[int, int], bytes] = {}
    assert frontier.root() == merkle.EMPTY_ROOT
    for size in range(1, 301):
        for node in frontier.append(hashes[size - 1]):
            stored[(node.level, node.index)] = node.hash
        assert frontier.root() == merkle.root_of(hashes[:size]), size
        assert [(n.level, n.index) for n in frontier.nodes] == merkle.frontier_positions(size)
    # every stored node is the hash of exactly the leaves it claims to cover
    for (level, index), h in stored.items():
        assert h == merkle.root_of(hashes[index << level : (index + 1) << level])
    assert len(stored) == 300 - bin(300).count("1")


def test_frontier_rebuilt_from_stored_hashes_continues_correctly() -> None:
    hashes = leaves(77)
    first = merkle.Frontier()
    for h in hashes[:45]:
        first.append(h)
    resumed = merkle.Frontier.from_hashes(45, first.hashes())
    for h in hashes[45:]:
        resumed.append(h)
    assert resumed.root() == merkle.root_of(hashes)
    with pytest.raises(ValueError, match="hashes"):
        merkle.Frontier.from_hashes(45, first.hashes()[:-1])


def test_all_proofs_verify_for_every_pair_up_to_64() -> None:
    hashes = leaves(64)
    for n in range(1, 65):
        sub = subtree_of(hashes[:n])
        root = merkle.root_of(hashes[:n])
        for i in range(n):
            merkle.verify_inclusion(i, n, hashes[i], merkle.inclusion_proof(i, n, sub), root)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, n, sub)
            merkle.verify_consistency(m, n, merkle.root_of(hashes[:m]), root, proof)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_proofs_verify_for_random_sizes(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 3000), label="n")
    m = data.draw(st.integers(1, n), label="m")
    i = data.draw(st.integers(0, n - 1), label="i")
    hashes = leaves(n)
    sub = subtree_of(hashes)
    root = merkle.root_of(hashes)
    merkle.verify_inclusion(i, n, hashes[i], merkle.inclusion_proof(i, n, sub), root)
    merkle.verify_consistency(
        m, n, merkle.root_of(hashes[:m]), root, merkle.consistency_proof(m, n, sub)
    )


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 1 << 40), st.data())
def test_proof_ranges_are_made_of_stored_perfect_subtrees(n: int, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, n - 1))
    m = data.draw(st.integers(1, n))
    ranges = merkle.inclusion_ranges(i, n) + merkle.consistency_ranges(m, n)
    for a, b in ranges:
        parts = merkle.perfect_subtrees(a, b)
        # a proof element costs O(log n) look-ups and the parts tile the range exactly
        assert len(parts) <= n.bit_length()
        pos = a
        for level, index in parts:
            assert index << level == pos
            pos += 1 << level
        assert pos == b
    assert len(merkle.inclusion_ranges(i, n)) <= (n - 1).bit_length()


# --- corruption matrix (after transparency-dev/merkle's verifier tests) ---------------------


def flipped(h: bytes, bit: int) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:] if bit < 8 else h[:-1] + bytes([h[-1] ^ 1])


INCLUSION_CASES = [(0, 1), (0, 2), (1, 2), (3, 8), (4, 5), (5, 7), (6, 7), (0, 13), (12, 13)]
INCLUSION_CASES += [(13, 64), (63, 64), (100, 257), (256, 257)]


@pytest.mark.parametrize(("index", "size"), INCLUSION_CASES)
def test_inclusion_corruptions_are_rejected(index: int, size: int) -> None:
    hashes = leaves(size)
    root = merkle.root_of(hashes)
    leaf = hashes[index]
    proof = merkle.inclusion_proof(index, size, subtree_of(hashes))
    merkle.verify_inclusion(index, size, leaf, proof, root)  # the correct proof passes

    def rejected(i: int, n: int, lf: bytes, pr: list[bytes], rt: bytes) -> None:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(i, n, lf, pr, rt)

    for wrong_index in {index - 1, index + 1, index ^ 2, size, -1} - {index}:
        rejected(wrong_index, size, leaf, proof, root)
    # (a size of the same tree shape, e.g. 7 vs 8 for leaf 3, gives the same path by design;
    # the signed checkpoint binds size and root together)
    for wrong_size in {size * 2, size // 2, index, 0} - {size}:
        rejected(index, wrong_size, leaf, proof, root)
    rejected(index, size, flipped(leaf, 0), proof, root)
    rejected(index, size, leaf, proof, flipped(root, 3))
    rejected(index, size, leaf, proof, merkle.EMPTY_ROOT)
    for k in range(len(proof)):
        for bit in (0, 7, 8):
            rejected(index, size, leaf, [*proof[:k], flipped(proof[k], bit), *proof[k + 1 :]], root)
    if proof:
        rejected(index, size, leaf, proof[:-1], root)
        rejected(index, size, leaf, proof[1:], root)
        rejected(index, size, leaf, [], root)
        rejected(index, size, leaf, [*proof[:-1], proof[-1][:31]], root)
    rejected(index, size, leaf, [*proof, merkle.EMPTY_ROOT], root)
    rejected(index, size, leaf, [*proof, leaf], root)
    rejected(index, size, leaf, [leaf, *proof], root)


CONSISTENCY_CASES = [(1, 2), (1, 8), (2, 5), (3, 7), (4, 8), (4, 9), (6, 8), (7, 8), (5, 13)]
CONSISTENCY_CASES += [(8, 9), (13, 64), (64, 65), (100, 257)]


@pytest.mark.parametrize(("m", "n"), CONSISTENCY_CASES)
def test_consistency_corruptions_are_rejected(m: int, n: int) -> None:
    hashes = leaves(n)
    old, new = merkle.root_of(hashes[:m]), merkle.root_of(hashes)
    proof = merkle.consistency_proof(m, n, subtree_of(hashes))
    merkle.verify_consistency(m, n, old, new, proof)  # the correct proof passes

    def rejected(a: int, b: int, r1: bytes, r2: bytes, pr: list[bytes]) -> None:
        with pytest.raises(ProofError):
            merkle.verify_consistency(a, b, r1, r2, pr)

    rejected(m, n, new, old, proof)  # swapped roots
    rejected(n, m, old, new, proof)  # m > n
    rejected(0, n, merkle.EMPTY_ROOT, new, proof)  # m = 0
    rejected(0, n, merkle.EMPTY_ROOT, new, [])
    rejected(m, n, old, new, [])  # empty proof where one is needed
    for wrong_m in {m - 1, m + 1, m * 2} - {m, n}:
        if 0 < wrong_m < n:
            rejected(wrong_m, n, old, new, proof)
    for wrong_n in {n * 2, n * 4 + 1}:
        rejected(m, wrong_n, old, new, proof)
    rejected(m, n, flipped(old, 1), new, proof)
    rejected(m, n, old, flipped(new, 1), proof)
    for k in range(len(proof)):
        for bit in (0, 7, 8):
            rejected(m, n, old, new, [*proof[:k], flipped(proof[k], bit), *proof[k + 1 :]])
    rejected(m, n, old, new, proof[:-1])
    rejected(m, n, old, new, proof[1:])
    rejected(m, n, old, new, [*proof, merkle.EMPTY_ROOT])
    rejected(m, n, old, new, [old, *proof])


def test_consistency_of_equal_sizes_needs_empty_proof_and_equal_roots() -> None:
    hashes = leaves(9)
    root = merkle.root_of(hashes)
    merkle.verify_consistency(9, 9, root, root, [])
    with pytest.raises(ProofError):
        merkle.verify_consistency(9, 9, root, root, [root])
    with pytest.raises(ProofError):
        merkle.verify_consistency(9, 9, root, merkle.root_of(hashes[:8]), [])


def test_generating_proofs_for_impossible_positions_is_refused() -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        merkle.inclusion_ranges(5, 5)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_ranges(0, 5)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_ranges(6, 5)
