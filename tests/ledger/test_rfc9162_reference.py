"""The fast tree checked against a naive one written straight from the RFC 9162 text."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconflict.ledger.rfc9162 import (
    CompactRange,
    NodeId,
    ProofError,
    consistency_nodes,
    consistency_proof,
    consistency_proof_from_nodes,
    inclusion_nodes,
    inclusion_proof,
    inclusion_proof_from_nodes,
    leaf_hash,
    nodes_completed_by,
    range_nodes,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    root_from_nodes,
    verify_consistency,
    verify_inclusion,
)

# --- the naive reference (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1) -------------------------


def _k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(n)
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    if m == 0 or m == len(d):
        return []
    return ref_subproof(m, d, True)


# --- fixtures ------------------------------------------------------------------------

BIG = 10_000
SMALL = 64
ENTRIES = [i.to_bytes(4, "big") for i in range(BIG)]
LEAVES = [leaf_hash(e) for e in ENTRIES]
REF_ROOTS_SMALL = [ref_mth(ENTRIES[:n]) for n in range(SMALL + 1)]


def _store_upto(size: int) -> dict[NodeId, bytes]:
    """A flat node table filled only from what CompactRange.append reports."""
    store: dict[NodeId, bytes] = {}
    cr = CompactRange()
    for leaf in LEAVES[:size]:
        for node, hsh in cr.append(leaf):
            assert node not in store
            store[node] = hsh
    return store


STORE = _store_upto(SMALL)
BIG_STORE = _store_upto(BIG)


def _getter(store: dict[NodeId, bytes]) -> Callable[[int, int], bytes]:
    return lambda level, index: store[NodeId(level, index)]


def _flip(hsh: bytes, at: int = 0) -> bytes:
    return hsh[:at] + bytes([hsh[at] ^ 1]) + hsh[at + 1 :]


def ref_path_shape(m: int, n: int) -> str:
    """Which side each PATH(m, D[n]) sibling is on, leaf first: R or L."""
    if n == 1:
        return ""
    k = _k(n)
    if m < k:
        return ref_path_shape(m, k) + "R"
    return ref_path_shape(m - k, n - k) + "L"


def ref_subproof_shape(m: int, n: int, b: bool) -> str:
    """The same for SUBPROOF(m, D[n], b); S marks an explicit starting node."""
    if m == n:
        return "" if b else "S"
    k = _k(n)
    if m <= k:
        return ref_subproof_shape(m, k, b) + "R"
    return ref_subproof_shape(m - k, n - k, False) + "L"


def _consistency_shape(size1: int, size2: int) -> str | None:
    if not 0 < size1 < size2:
        return None  # no non-empty proof exists for these sizes
    return ref_subproof_shape(size1, size2, True)


def _misjudged_inclusion_tampers(index: int, size: int, proof: list[bytes], root: bytes) -> list[str]:
    """Tampered variants judged wrongly. A changed size verifies exactly when the leaf's
    path has the same shape in both sizes (the proof carries hashes, not the size:
    the signed tree head binds size to root); every other tamper must fail."""
    leaf = LEAVES[index]
    shape = ref_path_shape(index, size)
    probes: list[tuple[str, bytes, int, int, list[bytes], bool]] = [
        ("leaf flipped", _flip(leaf), index, size, proof, False),
        ("index + 1", leaf, index + 1, size, proof, False),
        ("index - 1", leaf, index - 1, size, proof, False),
        ("extra node at end", leaf, index, size, [*proof, leaf], False),
        ("extra node at start", leaf, index, size, [leaf, *proof], False),
    ]
    for other in (size + 1, size - 1, size * 2):
        same = index < other and ref_path_shape(index, other) == shape
        probes.append((f"size {other}", leaf, index, other, proof, same))
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], i % 32)
        probes.append((f"proof[{i}] flipped", leaf, index, size, bad, False))
        dropped = proof[:i] + proof[i + 1 :]
        probes.append((f"proof[{i}] dropped", leaf, index, size, dropped, False))
    if len(proof) > 1:
        swapped = [proof[1], proof[0], *proof[2:]]
        probes.append(("two nodes swapped", leaf, index, size, swapped, False))
    wrong = []
    for desc, lf, i, n, p, expected in probes:
        try:
            verify_inclusion(lf, i, n, p, root)
            ok = True
        except ProofError:
            ok = False
        if ok != expected:
            wrong.append(f"{desc}: {'accepted' if ok else 'rejected'}")
    return wrong


def _misjudged_consistency_tampers(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> list[str]:
    """As for inclusion: changed sizes verify exactly when the proof shape is the same."""
    shape = _consistency_shape(size1, size2)
    probes: list[tuple[str, int, int, list[bytes], bytes, bytes, bool]] = [
        ("root1 flipped", size1, size2, proof, _flip(root1), root2, False),
        ("root2 flipped", size1, size2, proof, root1, _flip(root2), False),
        ("roots swapped", size1, size2, proof, root2, root1, False),
        ("extra node at end", size1, size2, [*proof, root1], root1, root2, False),
        ("extra node at start", size1, size2, [root2, *proof], root1, root2, False),
    ]
    for s1, s2 in [
        (size1 + 1, size2),
        (size1 - 1, size2),
        (size1, size2 + 1),
        (size1, size2 - 1),
        (size1, size2 * 2),
    ]:
        same = _consistency_shape(s1, s2) == shape
        probes.append((f"sizes {s1}, {s2}", s1, s2, proof, root1, root2, same))
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i], i % 32)
        probes.append((f"proof[{i}] flipped", size1, size2, bad, root1, root2, False))
        dropped = proof[:i] + proof[i + 1 :]
        probes.append((f"proof[{i}] dropped", size1, size2, dropped, root1, root2, False))
    wrong = []
    for desc, s1, s2, p, r1, r2, expected in probes:
        try:
            verify_consistency(s1, s2, p, r1, r2)
            ok = True
        except ProofError:
            ok = False
        if ok != expected:
            wrong.append(f"{desc}: {'accepted' if ok else 'rejected'}")
    return wrong


def test_some_sizes_share_a_path_shape() -> None:
    """The proof does not carry the size: leaf 0 has the same path in sizes 3 and 4,
    so the size-3 proof and root also verify as 'size 4'. Only a signed tree head,
    which binds size and root together, tells them apart."""
    proof = inclusion_proof(LEAVES, 0, 3)
    assert ref_path_shape(0, 3) == ref_path_shape(0, 4) == "RR"
    verify_inclusion(LEAVES[0], 0, 4, proof, REF_ROOTS_SMALL[3])
    assert ref_path_shape(0, 5) == "RRR"  # one more sibling: the size-3 proof is too short
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[0], 0, 5, proof, REF_ROOTS_SMALL[3])


# --- exhaustive up to 64 -------------------------------------------------------------


def test_roots_match_reference_up_to_64() -> None:
    for n in range(SMALL + 1):
        assert root_from_leaf_hashes(LEAVES[:n]) == REF_ROOTS_SMALL[n], n


def test_compact_range_root_at_every_size_up_to_64() -> None:
    cr = CompactRange()
    assert cr.root() == REF_ROOTS_SMALL[0]
    for n in range(1, SMALL + 1):
        cr.append(LEAVES[n - 1])
        assert cr.size == n
        assert cr.root() == REF_ROOTS_SMALL[n], n
        assert len(cr.nodes()) == n.bit_count()  # O(log n) memory


def test_inclusion_all_pairs_up_to_64() -> None:
    for size in range(1, SMALL + 1):
        root = REF_ROOTS_SMALL[size]
        for index in range(size):
            want = ref_path(index, ENTRIES[:size])
            assert inclusion_proof(LEAVES, index, size) == want, (index, size)
            assert inclusion_proof_from_nodes(index, size, _getter(STORE)) == want
            assert root_from_inclusion_proof(LEAVES[index], index, size, want) == root
            verify_inclusion(LEAVES[index], index, size, want, root)
            assert _misjudged_inclusion_tampers(index, size, want, root) == [], (index, size)


def test_consistency_all_pairs_up_to_64() -> None:
    for size2 in range(SMALL + 1):
        for size1 in range(size2 + 1):
            want = ref_proof(size1, ENTRIES[:size2])
            assert consistency_proof(LEAVES, size1, size2) == want, (size1, size2)
            assert consistency_proof_from_nodes(size1, size2, _getter(STORE)) == want
            r1, r2 = REF_ROOTS_SMALL[size1], REF_ROOTS_SMALL[size2]
            verify_consistency(size1, size2, want, r1, r2)
            if want:
                assert _misjudged_consistency_tampers(size1, size2, want, r1, r2) == []


def test_proof_nodes_are_complete_subtrees_inside_the_tree() -> None:
    for size in range(1, SMALL + 1):
        for index in range(size):
            assert all(node.end <= size for node in inclusion_nodes(index, size))
        for size1 in range(size + 1):
            assert all(node.end <= size for node in consistency_nodes(size1, size))


def test_node_store_holds_each_perfect_subtree_once() -> None:
    completed = [node for i in range(SMALL) for node in nodes_completed_by(i)]
    every = [NodeId(level, idx) for level in range(7) for idx in range(SMALL >> level)]
    assert sorted(completed) == sorted(every)
    assert set(STORE) == set(every)
    for (level, idx), hsh in STORE.items():
        assert hsh == ref_mth(ENTRIES[idx << level : (idx + 1) << level])


def test_root_from_nodes_at_every_past_size() -> None:
    for n in range(SMALL + 1):
        assert root_from_nodes(n, _getter(STORE)) == REF_ROOTS_SMALL[n], n


def test_compact_range_restored_from_stored_nodes_continues() -> None:
    for n in range(SMALL):
        restored = CompactRange.from_nodes(n, [STORE[node] for node in range_nodes(0, n)])
        assert restored.root() == REF_ROOTS_SMALL[n]
        restored.append(LEAVES[n])
        assert restored.root() == REF_ROOTS_SMALL[n + 1]


def test_range_nodes_tile_the_range() -> None:
    for end in range(SMALL + 1):
        for begin in range(end + 1):
            covered: list[int] = []
            for node in range_nodes(begin, end):
                covered.extend(range(node.begin, node.end))
            assert covered == list(range(begin, end)), (begin, end)


def test_bad_arguments_to_builders_raise_value_error() -> None:
    with pytest.raises(ValueError, match="not in a tree of size 4"):
        inclusion_nodes(4, 4)
    with pytest.raises(ValueError, match="0 <= size1 <= size2"):
        consistency_nodes(5, 4)
    with pytest.raises(ValueError, match="exceeds the 3 leaves"):
        inclusion_proof(LEAVES[:3], 0, 4)
    with pytest.raises(ValueError, match="has 2 nodes, got 1"):
        CompactRange.from_nodes(3, [LEAVES[0]])
    with pytest.raises(ValueError, match="leaf hash is 3 bytes"):
        CompactRange().append(b"abc")


# --- random large sizes --------------------------------------------------------------


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, BIG))
    return draw(st.integers(0, size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(1, BIG))
    return draw(st.integers(0, size2)), size2


@settings(max_examples=60, deadline=None)
@given(index_and_size())
def test_inclusion_large_matches_reference(pair: tuple[int, int]) -> None:
    index, size = pair
    want = ref_path(index, ENTRIES[:size])
    assert inclusion_proof(LEAVES, index, size) == want
    root = root_from_leaf_hashes(LEAVES[:size])
    verify_inclusion(LEAVES[index], index, size, want, root)
    assert _misjudged_inclusion_tampers(index, size, want, root) == []


@settings(max_examples=60, deadline=None)
@given(two_sizes())
def test_consistency_large_matches_reference(pair: tuple[int, int]) -> None:
    size1, size2 = pair
    want = ref_proof(size1, ENTRIES[:size2])
    assert consistency_proof(LEAVES, size1, size2) == want
    r1 = root_from_leaf_hashes(LEAVES[:size1])
    r2 = root_from_leaf_hashes(LEAVES[:size2])
    verify_consistency(size1, size2, want, r1, r2)
    if want:
        assert _misjudged_consistency_tampers(size1, size2, want, r1, r2) == []


@settings(max_examples=30, deadline=None)
@given(st.integers(0, BIG))
def test_root_large_matches_reference(size: int) -> None:
    assert root_from_leaf_hashes(LEAVES[:size]) == ref_mth(ENTRIES[:size])


def test_compact_range_matches_reference_to_10000() -> None:
    checkpoints = {1, 2, 3, 1000, 1023, 1024, 1025, 4097, 8191, BIG}
    cr = CompactRange()
    for n, leaf in enumerate(LEAVES, start=1):
        cr.append(leaf)
        if n in checkpoints:
            assert cr.root() == ref_mth(ENTRIES[:n]), n
            assert len(cr.nodes()) == n.bit_count()


@settings(max_examples=60, deadline=None)
@given(two_sizes())
def test_store_built_proofs_match_in_memory_proofs(pair: tuple[int, int]) -> None:
    size1, size2 = pair
    store = _getter(BIG_STORE)
    assert consistency_proof_from_nodes(size1, size2, store) == consistency_proof(LEAVES, size1, size2)
    assert root_from_nodes(size2, store) == root_from_leaf_hashes(LEAVES[:size2])
    index = size1 if size1 < size2 else size2 - 1
    assert inclusion_proof_from_nodes(index, size2, store) == inclusion_proof(LEAVES, index, size2)
