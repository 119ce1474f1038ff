"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing and proofs. Pure: no I/O.

The tree is the one of RFC 6962 and RFC 9162 §2.1: leaves are hashed with a 0x00
prefix, interior nodes with 0x01, and a tree of ``n`` leaves splits at the largest
power of two smaller than ``n``.

Nodes are named by :class:`NodeId` ``(level, index)``: the perfect subtree of
``2**level`` leaves that covers leaves ``[index * 2**level, (index + 1) * 2**level)``.
Level 0 holds the leaf hashes. Every hash a log ever needs to store is one of these.

Building a proof is split in two, as in transparency-dev/merkle:

* *which nodes*: :func:`inclusion_nodes` and :func:`consistency_nodes` name the
  perfect subtrees whose hashes make up a proof;
* *fetch them*: :func:`inclusion_proof_from_nodes` and
  :func:`consistency_proof_from_nodes` call a caller-supplied ``get_node(level, index)``
  and assemble the proof, folding the right-border subtrees of a tree that is not
  perfect into the one hash the RFC calls for.

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) takes plain values
only and follows RFC 9162 §2.1.3.2 and §2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from deconflict.errors import DeconflictError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "GetNode",
    "NodeId",
    "ProofError",
    "consistency_nodes",
    "consistency_proof",
    "consistency_proof_from_nodes",
    "inclusion_nodes",
    "inclusion_proof",
    "inclusion_proof_from_nodes",
    "leaf_hash",
    "node_hash",
    "nodes_completed_by",
    "range_nodes",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "root_from_nodes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Bytes in every hash of the tree (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(DeconflictError):
    """A proof did not verify; the message says which check failed."""


@dataclass(frozen=True, order=True, slots=True)
class NodeId:
    """A perfect subtree: ``2**level`` leaves starting at leaf ``index * 2**level``.

    Unpacks as ``level, index = node``; hashable, so usable as a table key.
    """

    level: int
    index: int

    def __iter__(self) -> Iterator[int]:
        return iter((self.level, self.index))

    @property
    def begin(self) -> int:
        """First leaf covered."""
        return self.index << self.level

    @property
    def end(self) -> int:
        """One past the last leaf covered."""
        return (self.index + 1) << self.level


GetNode = Callable[[int, int], bytes]
"""Returns the stored hash of the perfect subtree ``(level, index)``."""


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d0}) = SHA-256(0x00 || d0)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


# --- roots ---------------------------------------------------------------------------


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (RFC 9162 §2.1.1), in O(n) time.

    Hashes level by level; an odd node at the end of a level moves up unchanged,
    which gives exactly the tree split at the largest power of two below ``n``.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def range_nodes(begin: int, end: int) -> list[NodeId]:
    """The perfect subtrees that exactly tile leaves ``[begin, end)``, left to right.

    Each is the largest aligned subtree that fits, so for ``begin == 0`` they follow
    the binary digits of ``end`` from the highest.
    """
    if not 0 <= begin <= end:
        raise ValueError(f"range [{begin}, {end}) is not a valid leaf range")
    nodes: list[NodeId] = []
    while begin < end:
        # Largest level allowed by alignment of begin, then shrink to fit before end.
        level = (begin & -begin).bit_length() - 1 if begin else (end - begin).bit_length() - 1
        while begin + (1 << level) > end:
            level -= 1
        nodes.append(NodeId(level, begin >> level))
        begin += 1 << level
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a right-border range from its perfect subtrees (largest first)."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def root_from_nodes(size: int, get_node: GetNode) -> bytes:
    """The root of the tree of ``size`` leaves, from stored perfect-subtree hashes."""
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    if size == 0:
        return EMPTY_ROOT
    return _fold([get_node(*n) for n in range_nodes(0, size)])


# --- which nodes ---------------------------------------------------------------------
#
# A plan is a list of groups, in proof order; each group is the perfect subtrees that
# make up one proof element (one subtree, or the tiling of a right-border range whose
# MTH is that element).


def _pow2_below(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _inclusion_plan(index: int, size: int) -> list[list[NodeId]]:
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    groups: list[list[NodeId]] = []
    begin, n, m = 0, size, index  # current subtree is leaves [begin, begin + n)
    while n > 1:  # RFC 9162 §2.1.3.1 PATH(m, D[n]), top down
        k = _pow2_below(n)
        if m < k:
            groups.append(range_nodes(begin + k, begin + n))
            n = k
        else:
            groups.append(range_nodes(begin, begin + k))
            begin, n, m = begin + k, n - k, m - k
    groups.reverse()  # the proof lists siblings from the leaf up
    return groups


def _consistency_plan(size1: int, size2: int) -> list[list[NodeId]]:
    if not 0 <= size1 <= size2:
        raise ValueError(f"sizes must satisfy 0 <= size1 <= size2, got {size1}, {size2}")
    if size1 == 0 or size1 == size2:
        return []
    groups: list[list[NodeId]] = []
    begin, n, m, whole = 0, size2, size1, True  # RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b)
    while m != n:
        k = _pow2_below(n)
        if m <= k:
            groups.append(range_nodes(begin + k, begin + n))
            n = k
        else:
            groups.append(range_nodes(begin, begin + k))
            begin, n, m, whole = begin + k, n - k, m - k, False
    if not whole:
        groups.append(range_nodes(begin, begin + m))
    groups.reverse()
    return groups


def _flatten(groups: list[list[NodeId]]) -> list[NodeId]:
    return [node for group in groups for node in group]


def inclusion_nodes(index: int, size: int) -> list[NodeId]:
    """The perfect subtrees to fetch for the inclusion proof of leaf ``index``.

    Pass their hashes to :func:`inclusion_proof_from_nodes` (via ``get_node``).
    At most one run of them is the right border of the tree, folded into one hash.
    """
    return _flatten(_inclusion_plan(index, size))


def consistency_nodes(size1: int, size2: int) -> list[NodeId]:
    """The perfect subtrees to fetch for the consistency proof from ``size1`` to ``size2``."""
    return _flatten(_consistency_plan(size1, size2))


# --- fetch them ----------------------------------------------------------------------


def _assemble(groups: list[list[NodeId]], get_node: GetNode) -> list[bytes]:
    return [_fold([get_node(*node) for node in group]) for group in groups]


def inclusion_proof_from_nodes(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    return _assemble(_inclusion_plan(index, size), get_node)


def consistency_proof_from_nodes(size1: int, size2: int, get_node: GetNode) -> list[bytes]:
    """The RFC 9162 consistency proof between trees of ``size1`` and ``size2`` leaves."""
    return _assemble(_consistency_plan(size1, size2), get_node)


def _memory_nodes(leaf_hashes: Sequence[bytes], size: int) -> GetNode:
    if size > len(leaf_hashes):
        raise ValueError(f"tree size {size} exceeds the {len(leaf_hashes)} leaves given")

    def get_node(level: int, index: int) -> bytes:
        return root_from_leaf_hashes(leaf_hashes[index << level : (index + 1) << level])

    return get_node


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """Inclusion proof over an in-memory list (the first ``size`` leaf hashes)."""
    return inclusion_proof_from_nodes(index, size, _memory_nodes(leaf_hashes, size))


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int, size2: int) -> list[bytes]:
    """Consistency proof over an in-memory list (the first ``size2`` leaf hashes)."""
    return consistency_proof_from_nodes(size1, size2, _memory_nodes(leaf_hashes, size2))


# --- verification --------------------------------------------------------------------


def _inclusion_proof_length(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()  # levels below the point the paths split
    return inner + (index >> inner).bit_count()  # plus one per left sibling above it


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} is {len(value)} bytes, a hash is {HASH_SIZE}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        _check_hash(f"proof[{i}]", h)


def root_from_inclusion_proof(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1-4).

    Raises :class:`ProofError` when the proof cannot belong to ``index`` in ``size``.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_proof_hashes(proof)
    want = _inclusion_proof_length(index, size)
    if len(proof) != want:
        raise ProofError(
            f"inclusion proof has {len(proof)} hashes; leaf {index} in a tree of size {size} needs {want}"
        )
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    return r


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    Returns nothing on success; raises :class:`ProofError` naming the failed check.
    The proof binds the leaf to ``root``, not to ``size``: some sizes share a path shape
    (leaf 0 in sizes 3 and 4), so trust ``size`` only as signed with ``root`` in a tree head.
    """
    _check_hash("root", root)
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise ProofError(
            f"inclusion proof for leaf {index} in a tree of size {size} gives root "
            f"{computed.hex()}, expected {root.hex()}"
        )


def _consistency_proof_length(size1: int, size2: int) -> int:
    level = (size1 & -size1).bit_length() - 1  # trailing zeros: shared right edge
    fn, sn = (size1 - 1) >> level, (size2 - 1) >> level
    seed = 0 if fn == 0 else 1  # a power-of-two size1 is its own seed (root1)
    return seed + _inclusion_proof_length(fn, sn + 1)


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of ``size1`` with ``root1`` is a prefix of ``size2`` with ``root2``.

    RFC 9162 §2.1.4.2. An empty old tree is consistent with every tree (empty proof);
    equal sizes need equal roots and an empty proof. Raises :class:`ProofError`.
    As with inclusion, ``size2`` is bound by the signed tree head that carries ``root2``.
    """
    if size1 < 0 or size2 < size1:
        raise ProofError(f"sizes must satisfy 0 <= size1 <= size2, got {size1}, {size2}")
    if size1 == size2 or size1 == 0:
        if proof:
            raise ProofError(
                f"consistency proof from size {size1} to {size2} must be empty, got {len(proof)} hashes"
            )
        if size1 == size2 and root1 != root2:
            raise ProofError(f"trees of equal size {size1} have different roots")
        return
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    if not proof:  # step 1
        raise ProofError(f"consistency proof from size {size1} to {size2} is empty")
    _check_proof_hashes(proof)
    want = _consistency_proof_length(size1, size2)
    if len(proof) != want:
        raise ProofError(
            f"consistency proof has {len(proof)} hashes; from size {size1} to {size2} needs {want}"
        )
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # step 2: a power of two is its own first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # step 7
        raise ProofError("consistency proof is shorter than the path to the root")
    if fr != root1:
        raise ProofError(f"consistency proof gives root {fr.hex()} for size {size1}, expected {root1.hex()}")
    if sr != root2:
        raise ProofError(f"consistency proof gives root {sr.hex()} for size {size2}, expected {root2.hex()}")


# --- incremental state and node store layout -----------------------------------------


def nodes_completed_by(index: int) -> list[NodeId]:
    """The perfect subtrees that become complete when leaf ``index`` is appended.

    Bottom up: the leaf itself, then each ancestor whose right edge it is. A log that
    stores these as it appends holds every node any proof or root will ask for.
    """
    if index < 0:
        raise ValueError(f"leaf index must be >= 0, got {index}")
    count = index + 1
    levels = (count & -count).bit_length()  # 1 + trailing zeros of the new size
    return [NodeId(level, (count >> level) - 1) for level in range(levels)]


class CompactRange:
    """The right border of an append-only tree: O(log n) hashes, enough for its root.

    Holds the hashes of :func:`range_nodes` ``(0, size)``, largest first.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_nodes(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """Restore from stored hashes of ``range_nodes(0, size)`` (in that order)."""
        want = len(range_nodes(0, size))
        if len(hashes) != want:
            raise ValueError(f"a range of size {size} has {want} nodes, got {len(hashes)}")
        for h in hashes:
            if len(h) != HASH_SIZE:
                raise ValueError(f"node hash is {len(h)} bytes, expected {HASH_SIZE}")
        restored = cls()
        restored._size = size
        restored._hashes = list(hashes)
        return restored

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def nodes(self) -> list[tuple[NodeId, bytes]]:
        """The border subtrees and their hashes, largest first."""
        return list(zip(range_nodes(0, self._size), self._hashes, strict=True))

    def append(self, leaf: bytes) -> list[tuple[NodeId, bytes]]:
        """Append one leaf hash; return the subtrees it completed with their hashes.

        The returned list is :func:`nodes_completed_by` ``(old size)`` with hashes,
        bottom up: what a node store persists for this leaf.
        """
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"leaf hash is {len(leaf)} bytes, expected {HASH_SIZE}")
        completed = nodes_completed_by(self._size)
        out = [(completed[0], leaf)]
        acc = leaf
        for node in completed[1:]:
            acc = node_hash(self._hashes.pop(), acc)
            out.append((node, acc))
        self._hashes.append(acc)
        self._size += 1
        return out

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        return _fold(self._hashes) if self._hashes else EMPTY_ROOT
