"""Independent verification of anchored settlement windows and single records (pure functions).

Inputs are what an outsider can obtain: the settlement rows (e.g. from ClickHouse), the *anchor manifest*
(settlement id -> leaf hash, written when the window was anchored) and the root read from the chain.

* The manifest is itself untrusted: it is accepted only if its leaves rebuild the on-chain root. An
  authenticated manifest then says exactly which rows were tampered with (same id, different leaf), which
  are missing (id in the manifest, no row) and which were added (row not in the manifest).
* Without a usable manifest, a root mismatch is still detected; it just cannot be pinned to a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from streams.anchoring.chain import OnChainAnchor
from streams.anchoring.merkle import MerkleTree, leaf_hash, verify_proof
from streams.anchoring.windows import dedupe_latest


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


@dataclass
class WindowReport:
    """Outcome of :func:`verify_window`; ``valid`` is True only if the recomputed root equals the chain's."""

    kind: str
    window_id: str
    valid: bool
    on_chain_root: str | None
    recomputed_root: str | None
    on_chain_count: int | None
    record_count: int
    manifest_authentic: bool | None = None
    tampered: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"status": "VALID" if self.valid else "INVALID", **asdict(self)}


def verify_window(
    kind: str,
    window_id: str,
    records: Sequence[dict[str, Any]],
    on_chain: OnChainAnchor | None,
    manifest: Mapping[str, bytes] | None = None,
) -> WindowReport:
    """Recompute the window root from ``records`` and compare it with ``on_chain``; pinpoint differences
    using ``manifest`` (settlement id -> anchored leaf) when it is authentic."""
    rows = dedupe_latest(records)
    leaves = {r["settlement_id"]: leaf_hash(r) for r in rows}
    root = MerkleTree.from_leaves(leaves.values()).root if leaves else None
    rep = WindowReport(
        kind,
        window_id,
        False,
        _hex(on_chain.root if on_chain else None),
        _hex(root),
        on_chain.count if on_chain else None,
        len(rows),
    )
    if on_chain is None:
        rep.problems.append(f"{kind} {window_id} is not anchored on-chain")
        return rep
    rep.valid = root == on_chain.root and len(rows) == on_chain.count
    if manifest:
        rep.manifest_authentic = MerkleTree.from_leaves(manifest.values()).root == on_chain.root
    if rep.valid:
        return rep
    if root != on_chain.root:
        rep.problems.append(f"root mismatch: chain {_hex(on_chain.root)}, recomputed {_hex(root)}")
    if len(rows) != on_chain.count:
        rep.problems.append(f"record count mismatch: chain {on_chain.count}, found {len(rows)}")
    if not rep.manifest_authentic:
        rep.problems.append("anchor manifest missing or not matching the on-chain root: cannot name the rows")
        return rep
    assert manifest is not None
    for sid in sorted(set(manifest) | set(leaves)):
        if sid not in leaves:
            rep.missing.append(sid)
            rep.problems.append(f"missing row: settlement {sid} was anchored but is not in the store")
        elif sid not in manifest:
            rep.unexpected.append(sid)
            rep.problems.append(f"unexpected row: settlement {sid} was not part of the anchored window")
        elif leaves[sid] != manifest[sid]:
            rep.tampered.append(sid)
            rep.problems.append(
                f"tampered row: settlement {sid} hashes to {_hex(leaves[sid])}, anchored {_hex(manifest[sid])}"
            )
    return rep


@dataclass
class RecordReport:
    """Outcome of :func:`verify_record`: the record, its leaf, its proof and the on-chain root."""

    settlement_id: str
    kind: str | None
    window_id: str | None
    valid: bool
    record: dict[str, Any] | None
    leaf: str | None
    anchored_leaf: str | None
    proof: list[str]
    on_chain_root: str | None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"status": "VALID" if self.valid else "INVALID", **asdict(self)}


def verify_record(
    settlement_id: str,
    record: dict[str, Any] | None,
    kind: str | None,
    window_id: str | None,
    manifest: Mapping[str, bytes] | None,
    on_chain: OnChainAnchor | None,
) -> RecordReport:
    """Prove one record against the on-chain root through the (authenticated) manifest of its window."""
    leaf = leaf_hash(record) if record is not None else None
    anchored = manifest.get(settlement_id) if manifest else None
    rep = RecordReport(
        settlement_id,
        kind,
        window_id,
        False,
        record,
        _hex(leaf),
        _hex(anchored),
        [],
        _hex(on_chain.root if on_chain else None),
    )
    if not manifest or anchored is None:
        rep.problems.append(f"settlement {settlement_id} is in no anchor manifest (not anchored yet?)")
        return rep
    if on_chain is None:
        rep.problems.append(f"{kind} {window_id} is not anchored on-chain")
        return rep
    tree = MerkleTree.from_leaves(manifest.values())
    if tree.root != on_chain.root:
        rep.problems.append("anchor manifest does not rebuild the on-chain root (manifest tampered)")
        return rep
    rep.proof = [_hex(p) for p in tree.proof(anchored)]  # type: ignore[misc]
    if record is None:
        rep.problems.append(f"missing row: settlement {settlement_id} was anchored but is not in the store")
        return rep
    if leaf != anchored:
        rep.problems.append(f"tampered row: record hashes to {_hex(leaf)}, anchored leaf is {_hex(anchored)}")
        return rep
    assert leaf is not None
    rep.valid = verify_proof(leaf, tree.proof(leaf), on_chain.root)
    if not rep.valid:  # pragma: no cover - would mean a bug in the tree code
        rep.problems.append("proof does not fold to the on-chain root")
    return rep
