"""Merkle trees over settlement records, with domain-separated, sorted leaves and sorted-pair nodes.

Scheme (also implemented on-chain by ``AnchorRegistry.verifyLeaf``)::

    leaf(record)  = keccak256(0x00 || canonical_bytes(record))
    node(a, b)    = keccak256(0x01 || min(a, b) || max(a, b))      # a, b compared as 32-byte big-endian

* Leaves are sorted ascending, so the root does not depend on the order records arrive in.
* The 0x00/0x01 prefixes separate leaves from inner nodes (no second-preimage by passing a node as a leaf).
* Pairs are hashed in sorted order, so a proof is just the list of sibling hashes (no left/right bits).
* Odd node count on a level: the last node is promoted unchanged to the next level (never duplicated, so no
  two different leaf sets share a root). One leaf: root = that leaf. No leaves: no root (empty windows are not
  anchored).
* Duplicate leaves (byte-identical records) are kept once: a set of records has one root.

A proof for n leaves holds at most ceil(log2 n) hashes of 32 bytes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak

from streams.settlement.canonical import canonical_bytes

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash_bytes(data: bytes) -> bytes:
    """keccak256(0x00 || data): the leaf of already canonical bytes."""
    return keccak(LEAF_PREFIX + data)


def leaf_hash(record: dict[str, Any]) -> bytes:
    """The 32-byte leaf of one record."""
    return leaf_hash_bytes(canonical_bytes(record))


def node_hash(a: bytes, b: bytes) -> bytes:
    """keccak256(0x01 || min || max)."""
    return keccak(NODE_PREFIX + a + b) if a <= b else keccak(NODE_PREFIX + b + a)


@dataclass(frozen=True)
class MerkleTree:
    """All levels of a tree; ``levels[0]`` are the sorted unique leaves, ``levels[-1] == [root]``."""

    levels: tuple[tuple[bytes, ...], ...]

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> MerkleTree:
        level = tuple(sorted(set(leaves)))
        if not level:
            raise ValueError("a Merkle tree needs at least one leaf")
        if any(len(x) != 32 for x in level):
            raise ValueError("leaves must be 32-byte hashes")
        levels = [level]
        while len(level) > 1:
            nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = tuple(nxt)
            levels.append(level)
        return cls(tuple(levels))

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> MerkleTree:
        return cls.from_leaves(leaf_hash(r) for r in records)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    @property
    def leaves(self) -> tuple[bytes, ...]:
        return self.levels[0]

    def __len__(self) -> int:
        return len(self.levels[0])

    def proof(self, leaf: bytes) -> list[bytes]:
        """Sibling hashes from ``leaf`` up to the root. Raises KeyError if the leaf is not in the tree."""
        idx = _index(self.levels[0], leaf)
        out: list[bytes] = []
        for level in self.levels[:-1]:
            sibling = idx ^ 1
            if sibling < len(level):
                out.append(level[sibling])
            idx //= 2
        return out


def _index(sorted_leaves: Sequence[bytes], leaf: bytes) -> int:
    i = bisect_left(sorted_leaves, leaf)
    if i == len(sorted_leaves) or sorted_leaves[i] != leaf:
        raise KeyError(f"leaf 0x{leaf.hex()} is not in the tree")
    return i


def root_of(records: Iterable[dict[str, Any]]) -> bytes:
    """Root over the canonical encodings of ``records``."""
    return MerkleTree.from_records(records).root


def verify_proof(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True if folding ``proof`` onto ``leaf`` gives ``root``."""
    h = leaf
    for sibling in proof:
        h = node_hash(h, sibling)
    return h == root
