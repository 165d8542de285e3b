from __future__ import annotations

from streams.anchoring.chain import OnChainAnchor
from streams.anchoring.merkle import MerkleTree, leaf_hash, verify_proof
from streams.anchoring.verify import verify_record, verify_window
from tools.sim.settlements import synthetic_settlement

RECS = [synthetic_settlement(i) for i in range(7)]
TREE = MerkleTree.from_records(RECS)
CHAIN = OnChainAnchor(TREE.root, len(RECS), 0, 900_000, 5, "0x" + "11" * 20)
MANIFEST = {r["settlement_id"]: leaf_hash(r) for r in RECS}


def test_untouched_window_is_valid():
    rep = verify_window("FLEX", "w", list(reversed(RECS)), CHAIN, MANIFEST)
    assert rep.valid and rep.manifest_authentic and rep.problems == []
    assert rep.to_dict()["status"] == "VALID"


def test_tampered_row_is_named():
    rows = [dict(r) for r in RECS]
    rows[3]["amount_micro"] += 1
    rep = verify_window("FLEX", "w", rows, CHAIN, MANIFEST)
    assert not rep.valid and rep.tampered == [RECS[3]["settlement_id"]] and rep.missing == []
    assert any("tampered row" in p for p in rep.problems)


def test_missing_and_unexpected_rows_are_named():
    rows = RECS[:2] + RECS[3:] + [synthetic_settlement(50)]
    rep = verify_window("FLEX", "w", rows, CHAIN, MANIFEST)
    assert rep.missing == [RECS[2]["settlement_id"]] and rep.unexpected == ["st-FLEX-0-50"]
    assert not rep.valid


def test_forged_manifest_is_not_trusted():
    forged = dict(MANIFEST, **{RECS[0]["settlement_id"]: b"\x99" * 32})
    rows = [dict(RECS[0], amount_micro=0), *RECS[1:]]
    rep = verify_window("FLEX", "w", rows, CHAIN, forged)
    assert not rep.valid and rep.manifest_authentic is False and rep.tampered == []
    assert any("cannot name the rows" in p for p in rep.problems)


def test_not_anchored_window():
    rep = verify_window("FLEX", "w", RECS, None, MANIFEST)
    assert not rep.valid and "not anchored" in rep.problems[0]


def test_record_valid_with_proof():
    r = RECS[4]
    rep = verify_record(r["settlement_id"], r, "FLEX", "w", MANIFEST, CHAIN)
    assert rep.valid and rep.leaf == rep.anchored_leaf
    assert verify_proof(leaf_hash(r), [bytes.fromhex(p[2:]) for p in rep.proof], TREE.root)


def test_record_tampered_missing_unknown():
    r = RECS[4]
    tampered = verify_record(
        r["settlement_id"], dict(r, party_id="someone-else"), "FLEX", "w", MANIFEST, CHAIN
    )
    assert not tampered.valid and "tampered row" in tampered.problems[0] and tampered.proof
    missing = verify_record(r["settlement_id"], None, "FLEX", "w", MANIFEST, CHAIN)
    assert not missing.valid and "missing row" in missing.problems[0]
    unknown = verify_record("nope", None, None, None, None, None)
    assert not unknown.valid and "no anchor manifest" in unknown.problems[0]
