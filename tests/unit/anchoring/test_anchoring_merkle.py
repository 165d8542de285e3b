from __future__ import annotations

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.anchoring.merkle import MerkleTree, leaf_hash, node_hash, root_of, verify_proof
from streams.settlement.canonical import NotCanonical, canonical_bytes
from tools.sim.settlements import synthetic_settlement as make_settlement


def test_canonical_bytes_sorted_compact_utf8():
    assert (
        canonical_bytes({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()
    )


def test_canonical_bytes_refuses_floats():
    with pytest.raises(NotCanonical, match=r"\$\.x\[1\]"):
        canonical_bytes({"x": [1, 2.5]})


def test_leaf_and_node_are_domain_separated():
    rec = make_settlement(1)
    assert leaf_hash(rec) == keccak(b"\x00" + canonical_bytes(rec))
    a, b = leaf_hash(rec), leaf_hash(make_settlement(2))
    assert node_hash(a, b) == node_hash(b, a) == keccak(b"\x01" + min(a, b) + max(a, b))
    assert node_hash(a, b) != keccak(b"\x00" + min(a, b) + max(a, b))


def test_single_leaf_root_is_the_leaf():
    rec = make_settlement(0)
    tree = MerkleTree.from_records([rec])
    assert tree.root == leaf_hash(rec) and tree.proof(tree.root) == []


def test_empty_tree_refused():
    with pytest.raises(ValueError):
        MerkleTree.from_leaves([])


def test_three_leaves_promote_the_odd_one():
    leaves = sorted(keccak(bytes([i])) for i in range(3))
    tree = MerkleTree.from_leaves(leaves)
    assert tree.root == node_hash(node_hash(leaves[0], leaves[1]), leaves[2])
    assert tree.proof(leaves[2]) == [node_hash(leaves[0], leaves[1])]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 31, 33, 100])
def test_every_proof_verifies_and_is_logarithmic(n):
    recs = [make_settlement(i) for i in range(n)]
    tree = MerkleTree.from_records(recs)
    depth = (n - 1).bit_length()
    for r in recs:
        proof = tree.proof(leaf_hash(r))
        assert len(proof) <= depth
        assert verify_proof(leaf_hash(r), proof, tree.root)


def test_root_independent_of_order_and_duplicates():
    recs = [make_settlement(i) for i in range(11)]
    assert root_of(recs) == root_of(list(reversed(recs)) + recs[:3])


def test_tampered_record_fails_its_proof():
    recs = [make_settlement(i) for i in range(6)]
    tree = MerkleTree.from_records(recs)
    bad = dict(recs[2], amount_micro=recs[2]["amount_micro"] + 1)
    assert not verify_proof(leaf_hash(bad), tree.proof(leaf_hash(recs[2])), tree.root)
    assert root_of([*recs[:2], bad, *recs[3:]]) != tree.root


def test_proof_of_unknown_leaf_raises():
    tree = MerkleTree.from_records([make_settlement(i) for i in range(4)])
    with pytest.raises(KeyError):
        tree.proof(leaf_hash(make_settlement(99)))


@settings(max_examples=60, deadline=None)
@given(st.sets(st.binary(min_size=32, max_size=32), min_size=1, max_size=40), st.data())
def test_property_proofs_verify_and_do_not_transfer(leaves, data):
    tree = MerkleTree.from_leaves(leaves)
    leaf = data.draw(st.sampled_from(sorted(leaves)))
    proof = tree.proof(leaf)
    assert verify_proof(leaf, proof, tree.root)
    other = keccak(b"not a member" + leaf)
    assert not verify_proof(other, proof, tree.root)
    if len(leaves) > 1:
        # removing any leaf changes the root
        smaller = set(leaves) - {leaf}
        assert MerkleTree.from_leaves(smaller).root != tree.root
