"""Known-answer tests: the RFC 6962 vectors used by transparency-dev/merkle (testonly,
proof/verify_test.go) and certificate-transparency-go. Same tree as RFC 9162."""

from __future__ import annotations

import pytest

from deconflict.ledger.rfc9162 import (
    EMPTY_ROOT,
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
    node_hash,
    nodes_completed_by,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    root_from_nodes,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

LEAF_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]
LEAVES = [leaf_hash(x) for x in LEAF_INPUTS]

# NODE_HASHES[level][index]: every perfect subtree of the 8-leaf tree.
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [
        h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ],
]

# ROOTS[size] for sizes 0..8.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# (0-based leaf index, tree size, proof). The Go source lists 1-based leaf numbers.
INCLUSION_PROOFS = [
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (0, 1, []),
]

# (size1, size2, proof)
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == ROOTS[0]
    assert root_from_leaf_hashes([]) == ROOTS[0]


def test_leaf_hashes_match_vectors() -> None:
    assert LEAVES == NODE_HASHES[0]


def test_node_hash_builds_level_one() -> None:
    assert [node_hash(LEAVES[2 * i], LEAVES[2 * i + 1]) for i in range(4)] == NODE_HASHES[1]


@pytest.mark.parametrize("size", range(9))
def test_root_for_each_size(size: int) -> None:
    assert root_from_leaf_hashes(LEAVES[:size]) == ROOTS[size]


def test_every_perfect_subtree_hash() -> None:
    for level, row in enumerate(NODE_HASHES):
        for index, want in enumerate(row):
            span = LEAVES[index << level : (index + 1) << level]
            assert root_from_leaf_hashes(span) == want, (level, index)


def test_well_known_size_8_root() -> None:
    assert root_from_leaf_hashes(LEAVES).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


def test_compact_range_matches_compact_tree_vectors() -> None:
    nh = NODE_HASHES
    want = [
        [],
        [nh[0][0]],
        [nh[1][0]],
        [nh[1][0], nh[0][2]],
        [nh[2][0]],
        [nh[2][0], nh[0][4]],
        [nh[2][0], nh[1][2]],
        [nh[2][0], nh[1][2], nh[0][6]],
        [nh[3][0]],
    ]
    cr = CompactRange()
    assert [hsh for _, hsh in cr.nodes()] == want[0]
    assert cr.root() == ROOTS[0]
    for size in range(1, 9):
        cr.append(LEAVES[size - 1])
        assert [hsh for _, hsh in cr.nodes()] == want[size]
        assert cr.root() == ROOTS[size]


def test_compact_range_reports_completed_nodes_with_hashes() -> None:
    cr = CompactRange()
    for leaf in LEAVES[:7]:
        cr.append(leaf)
    completed = cr.append(LEAVES[7])
    assert completed == [
        (NodeId(0, 7), NODE_HASHES[0][7]),
        (NodeId(1, 3), NODE_HASHES[1][3]),
        (NodeId(2, 1), NODE_HASHES[2][1]),
        (NodeId(3, 0), NODE_HASHES[3][0]),
    ]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_inclusion_proof_vectors(index: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(LEAVES, index, size) == proof
    assert root_from_inclusion_proof(LEAVES[index], index, size, proof) == ROOTS[size]
    verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_PROOFS)
def test_consistency_proof_vectors(size1: int, size2: int, proof: list[bytes]) -> None:
    assert consistency_proof(LEAVES, size1, size2) == proof
    verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    probes = [
        ("index - 1", index - 1, size, proof, root, leaf),
        ("index + 1", index + 1, size, proof, root, leaf),
        ("index ^ 2", index ^ 2, size, proof, root, leaf),
        ("size * 2", index, size * 2, proof, root, leaf),
        ("size // 2", index, size // 2, proof, root, leaf),
        ("wrong leaf", index, size, proof, root, b"WrongLeaf"),
        ("empty root", index, size, proof, EMPTY_ROOT, leaf),
        ("random root", index, size, proof, SOME_HASH, leaf),
        ("trailing garbage", index, size, [*proof, b""], root, leaf),
        ("trailing root", index, size, [*proof, root], root, leaf),
        ("preceding garbage", index, size, [b"", *proof], root, leaf),
        ("preceding root", index, size, [root, *proof], root, leaf),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((f"proof[{i}] bit 3", index, size, bad, root, leaf))
    if proof:
        probes.append(("removed component", index, size, proof[:-1], root, leaf))
    if len(proof) > 1:
        probes.append(("inserted component", index, size, [proof[0], SOME_HASH, *proof[1:]], root, leaf))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS[:4])
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[bytes]) -> None:
    wrongly_verified = []
    for desc, i, n, p, root, leaf in _inclusion_probes(index, size, proof, ROOTS[size], LEAVES[index]):
        try:
            verify_inclusion(leaf, i, n, p, root)
        except ProofError:
            continue
        wrongly_verified.append(desc)
    assert wrongly_verified == []


def test_single_entry_inclusion() -> None:
    hsh = leaf_hash(b"data")
    verify_inclusion(hsh, 0, 1, [], hsh)  # a one-leaf tree's root is its leaf hash
    for leaf, root in [(hsh, b""), (b"", hsh), (b"", b"")]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, 0, 1, [], root)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (1, 1)])
def test_inclusion_outside_tree_fails(index: int, size: int) -> None:
    with pytest.raises(ProofError, match="not in a tree"):
        verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


R1 = b"don't care 1"
R2 = b"don't care 2"


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "ok"),
    [
        (0, 0, R1, R2, [], False),
        (1, 1, R1, R2, [], False),
        (0, 0, R1, R1, [], True),
        (0, 1, R1, R2, [], True),
        (1, 1, R2, R2, [], True),
        (1, 0, R1, R2, [], False),  # time travel to the past
        (2, 1, R1, R2, [], False),
        (1, 2, R1, R2, [], False),  # empty proof
        (0, 0, EMPTY_ROOT, R2, [], False),
        (1, 1, EMPTY_ROOT, R2, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),  # proof must be empty
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    ],
)
def test_consistency_edge_cases(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    if ok:
        verify_consistency(size1, size2, proof, root1, root2)  # raises on failure
    else:
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, root1, root2)


def _consistency_probes(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    probes = [
        ("size1 - 1", size1 - 1, size2, root1, root2, proof),
        ("size1 + 1", size1 + 1, size2, root1, root2, proof),
        ("size1 ^ 2", size1 ^ 2, size2, root1, root2, proof),
        ("size2 * 2", size1, size2 * 2, root1, root2, proof),
        ("size2 // 2", size1, size2 // 2, root1, root2, proof),
        ("wrong root1", size1, size2, b"WrongRoot", root2, proof),
        ("wrong root2", size1, size2, root1, b"WrongRoot", proof),
        ("swapped roots", size1, size2, root2, root1, proof),
        ("empty proof", size1, size2, root1, root2, []),
        ("trailing garbage", size1, size2, root1, root2, [*proof, b""]),
        ("trailing root1", size1, size2, root1, root2, [*proof, root1]),
        ("trailing root2", size1, size2, root1, root2, [*proof, root2]),
        ("preceding garbage", size1, size2, root1, root2, [b"", *proof]),
        ("preceding root1", size1, size2, root1, root2, [root1, *proof]),
        ("preceding root2", size1, size2, root1, root2, [root2, *proof]),
        ("preceding proof[0]", size1, size2, root1, root2, [proof[0], *proof]),
        ("truncated proof", size1, size2, root1, root2, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((f"proof[{i}] bit 4", size1, size2, root1, root2, bad))
    return probes


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_PROOFS[1:])
def test_corrupted_consistency_proofs_fail(size1: int, size2: int, proof: list[bytes]) -> None:
    wrongly_verified = []
    for desc, s1, s2, r1, r2, p in _consistency_probes(size1, size2, ROOTS[size1], ROOTS[size2], proof):
        try:
            verify_consistency(s1, s2, p, r1, r2)
        except ProofError:
            continue
        wrongly_verified.append(desc)
    assert wrongly_verified == []


def test_failure_messages_name_the_check() -> None:
    index, size, proof = INCLUSION_PROOFS[1]
    with pytest.raises(ProofError, match="has 2 hashes; leaf 5 in a tree of size 8 needs 3"):
        verify_inclusion(LEAVES[index], index, size, proof[:2], ROOTS[size])
    with pytest.raises(ProofError, match="gives root .* expected " + ROOTS[7].hex()):
        verify_inclusion(LEAVES[index], index, size, proof, ROOTS[7])
    with pytest.raises(ProofError, match=r"proof\[1\] is 3 bytes"):
        verify_inclusion(LEAVES[index], index, size, [proof[0], b"abc", proof[2]], ROOTS[size])
    _, _, cproof = CONSISTENCY_PROOFS[2]
    with pytest.raises(ProofError, match="for size 6, expected"):
        verify_consistency(6, 8, cproof, ROOTS[5], ROOTS[8])
    with pytest.raises(ProofError, match="for size 8, expected"):
        verify_consistency(6, 8, cproof, ROOTS[6], ROOTS[7])


def _vector_node(level: int, index: int) -> bytes:
    return NODE_HASHES[level][index]


def test_which_nodes_for_inclusion_and_consistency() -> None:
    assert inclusion_nodes(5, 8) == [NodeId(0, 4), NodeId(1, 3), NodeId(2, 0)]
    assert inclusion_nodes(2, 3) == [NodeId(1, 0)]
    assert consistency_nodes(6, 7) == [NodeId(1, 2), NodeId(0, 6), NodeId(2, 0)]
    assert consistency_nodes(4, 8) == [NodeId(2, 1)]
    assert consistency_nodes(0, 8) == []
    assert consistency_nodes(8, 8) == []


def test_right_border_nodes_fold_into_one_proof_hash() -> None:
    # Leaf 0 of 7: the sibling of [0, 4) is [4, 7), stored as [4, 6) and [6, 7).
    assert inclusion_nodes(0, 7) == [NodeId(0, 1), NodeId(1, 1), NodeId(1, 2), NodeId(0, 6)]
    proof = inclusion_proof_from_nodes(0, 7, _vector_node)
    nh = NODE_HASHES
    assert proof == [nh[0][1], nh[1][1], node_hash(nh[1][2], nh[0][6])]
    verify_inclusion(LEAVES[0], 0, 7, proof, ROOTS[7])
    assert consistency_proof_from_nodes(6, 7, _vector_node) == CONSISTENCY_PROOFS[4][2]
    assert root_from_nodes(7, _vector_node) == ROOTS[7]


def test_node_id_covers_its_leaves() -> None:
    node = NodeId(2, 3)
    level, index = node
    assert (level, index, node.begin, node.end) == (2, 3, 12, 16)
    assert nodes_completed_by(7) == [NodeId(0, 7), NodeId(1, 3), NodeId(2, 1), NodeId(3, 0)]
    assert nodes_completed_by(4) == [NodeId(0, 4)]


def test_empty_consistency_proof_is_named() -> None:
    with pytest.raises(ProofError, match="from size 6 to 8 is empty"):
        verify_consistency(6, 8, [], ROOTS[6], ROOTS[8])
