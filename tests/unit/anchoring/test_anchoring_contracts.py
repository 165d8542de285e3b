"""AnchorRegistry and ContractTermsRegistry on eth-tester (py-evm): access control, write-once, events."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from eth_hash.auto import keccak

from edream.paths import CONTRACTS_DIR, NODE_BIN
from streams.anchoring.artifacts import ARTIFACTS_DIR, CONTRACT_NAMES, load_artifact, revert_reason
from streams.anchoring.chain import AnchorRegistryClient, deploy
from streams.anchoring.merkle import MerkleTree, leaf_hash
from tools.sim.settlements import synthetic_settlement

ROOT = b"\x11" * 32


def _transact(w3, account, fn):
    tx = fn.build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
    )
    h = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(h)


def _reverts(fn, account, contract_name: str) -> str | None:
    with pytest.raises(Exception) as info:
        fn.call({"from": account.address})
    return revert_reason(info.value, contract_name)


@pytest.fixture
def registry(tester_chain):
    w3, owner, other = tester_chain
    address, _ = deploy(w3, owner, "AnchorRegistry")
    return w3, w3.eth.contract(address=address, abi=load_artifact("AnchorRegistry")["abi"]), owner, other


def test_artifacts_are_not_stale(tmp_path):
    """Recompile with the pinned solc-js and compare with the committed artifacts."""
    node = shutil.which("node")
    if node is None or not (NODE_BIN / "solcjs").exists():
        pytest.fail("node and node_modules (npm install) are required to check the contract artifacts")
    subprocess.run([node, str(CONTRACTS_DIR / "compile.js"), str(tmp_path)], check=True, capture_output=True)
    for name in CONTRACT_NAMES:
        fresh = json.loads((tmp_path / f"{name}.json").read_text())
        committed = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        assert fresh == committed, f"contracts/artifacts/{name}.json is stale: run node contracts/compile.js"
        assert committed["compiler"].startswith("solc-js 0.8.37")


def test_anchor_write_once_and_event(registry):
    w3, c, owner, _ = registry
    receipt = _transact(w3, owner, c.functions.anchor("FLEX", "2026-11-18T10:15Z/15m", ROOT, 7, 1000, 2000))
    (ev,) = c.events.Anchored().process_receipt(receipt)
    assert ev.args.kind == "FLEX" and ev.args.windowId == "2026-11-18T10:15Z/15m"
    assert (ev.args.root, ev.args.count, ev.args.windowStart, ev.args.windowEnd) == (ROOT, 7, 1000, 2000)
    assert ev.args.anchorer == owner.address
    assert ev.args.key == c.functions.keyOf("FLEX", "2026-11-18T10:15Z/15m").call()
    stored = c.functions.getAnchor("FLEX", "2026-11-18T10:15Z/15m").call()
    assert stored == (ROOT, 7, 1000, 2000, receipt.blockNumber, owner.address)
    # same window again, even with the same root: refused
    again = c.functions.anchor("FLEX", "2026-11-18T10:15Z/15m", ROOT, 7, 1000, 2000)
    assert _reverts(again, owner, "AnchorRegistry") == "AlreadyAnchored"
    other_root = c.functions.anchor("FLEX", "2026-11-18T10:15Z/15m", b"\x22" * 32, 7, 1000, 2000)
    assert _reverts(other_root, owner, "AnchorRegistry") == "AlreadyAnchored"
    # a different kind for the same window id is a different key
    _transact(w3, owner, c.functions.anchor("MARKET", "2026-11-18T10:15Z/15m", ROOT, 1, 1000, 2000))
    assert c.functions.anchorCount().call() == 2


def test_anchor_input_validation(registry):
    _, c, owner, _ = registry
    assert (
        _reverts(c.functions.anchor("FLEX", "w", b"\x00" * 32, 1, 0, 1), owner, "AnchorRegistry")
        == "EmptyRoot"
    )
    assert _reverts(c.functions.anchor("FLEX", "w", ROOT, 0, 0, 1), owner, "AnchorRegistry") == "EmptyWindow"
    assert _reverts(c.functions.anchor("FLEX", "w", ROOT, 1, 5, 5), owner, "AnchorRegistry") == "BadWindow"


def test_only_writers_anchor_and_owner_rotates_them(registry):
    w3, c, owner, other = registry
    assert _reverts(c.functions.anchor("FLEX", "w", ROOT, 1, 0, 1), other, "AnchorRegistry") == "NotWriter"
    assert _reverts(c.functions.setWriter(other.address, True), other, "AnchorRegistry") == "NotOwner"
    receipt = _transact(w3, owner, c.functions.setWriter(other.address, True))
    (ev,) = c.events.WriterSet().process_receipt(receipt)
    assert (ev.args.account, ev.args.authorised) == (other.address, True)
    _transact(w3, other, c.functions.anchor("FLEX", "w", ROOT, 1, 0, 1))
    # rotate: revoke the old key
    _transact(w3, owner, c.functions.setWriter(other.address, False))
    assert _reverts(c.functions.anchor("FLEX", "w2", ROOT, 1, 0, 1), other, "AnchorRegistry") == "NotWriter"
    # hand over ownership
    receipt = _transact(w3, owner, c.functions.transferOwnership(other.address))
    assert c.events.OwnershipTransferred().process_receipt(receipt)[0].args.newOwner == other.address
    assert c.functions.owner().call() == other.address
    assert _reverts(c.functions.setWriter(owner.address, False), owner, "AnchorRegistry") == "NotOwner"
    zero = "0x" + "00" * 20
    assert _reverts(c.functions.transferOwnership(zero), other, "AnchorRegistry") == "ZeroAddress"


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_on_chain_verify_leaf_matches_python_merkle(registry, n):
    w3, c, owner, _ = registry
    recs = [synthetic_settlement(i) for i in range(n)]
    tree = MerkleTree.from_records(recs)
    _transact(w3, owner, c.functions.anchor("FLEX", "w", tree.root, n, 0, 900_000))
    for r in recs:
        leaf = leaf_hash(r)
        assert c.functions.verifyLeaf("FLEX", "w", leaf, tree.proof(leaf)).call()
    assert not c.functions.verifyLeaf("FLEX", "w", keccak(b"x"), tree.proof(tree.leaves[0])).call()
    assert not c.functions.verifyLeaf("FLEX", "other", tree.leaves[0], tree.proof(tree.leaves[0])).call()


def test_client_reads_anchor(registry):
    w3, c, owner, _ = registry
    client = AnchorRegistryClient(w3, c.address, owner)
    assert client.get_anchor("FLEX", "w") is None
    tx_hash = client.send_anchor("FLEX", "w", ROOT, 3, 0, 900_000)
    receipt = client.wait_receipt(tx_hash, 10)
    got = client.get_anchor("FLEX", "w")
    assert got is not None and (got.root, got.count, got.block_number) == (ROOT, 3, receipt.blockNumber)
    found = client.find_anchor_tx("FLEX", "w", got.block_number)
    assert found is not None and found.tx_hash == tx_hash and found.gas_used == receipt.gasUsed


# -- ContractTermsRegistry -----------------------------------------------------------------------------
@pytest.fixture
def terms(tester_chain):
    w3, owner, other = tester_chain
    address, _ = deploy(w3, owner, "ContractTermsRegistry")
    return (
        w3,
        w3.eth.contract(address=address, abi=load_artifact("ContractTermsRegistry")["abi"]),
        owner,
        other,
    )


def test_terms_versions_and_events(terms):
    w3, c, owner, _ = terms
    cid, pid = keccak(b"contract-1"), keccak(b"prosumer-1")
    r1 = _transact(w3, owner, c.functions.register(cid, pid, keccak(b"terms v1"), keccak(b"reg"), 10, 20))
    (ev,) = c.events.TermsRegistered().process_receipt(r1)
    assert (ev.args.contractId, ev.args.prosumerId, ev.args.version) == (cid, pid, 1)
    _transact(w3, owner, c.functions.register(cid, pid, keccak(b"terms v2"), keccak(b"reg"), 10, 30))
    assert c.functions.latestVersion(cid).call() == 2
    assert c.functions.getTerms(cid, 1).call()[1] == keccak(b"terms v1")  # history is kept
    assert c.functions.getTerms(cid, 0).call()[1] == keccak(b"terms v2")  # 0 = latest
    assert _reverts(c.functions.getTerms(cid, 3), owner, "ContractTermsRegistry") == "UnknownVersion"
    # the contract stays bound to its prosumer
    bad = c.functions.register(cid, keccak(b"prosumer-2"), keccak(b"t"), keccak(b"r"), 10, 30)
    assert _reverts(bad, owner, "ContractTermsRegistry") == "ProsumerMismatch"
    assert (
        _reverts(
            c.functions.register(cid, pid, b"\x00" * 32, keccak(b"r"), 10, 30), owner, "ContractTermsRegistry"
        )
        == "EmptyHash"
    )
    assert (
        _reverts(
            c.functions.register(cid, pid, keccak(b"t"), keccak(b"r"), 30, 30), owner, "ContractTermsRegistry"
        )
        == "BadValidity"
    )


def test_terms_only_writers(terms):
    w3, c, owner, other = terms
    fn = c.functions.register(keccak(b"c"), keccak(b"p"), keccak(b"t"), keccak(b"r"), 1, 2)
    assert _reverts(fn, other, "ContractTermsRegistry") == "NotWriter"
    _transact(w3, owner, c.functions.setWriter(other.address, True))
    _transact(w3, other, fn)
    assert c.functions.latestVersion(keccak(b"c")).call() == 1
