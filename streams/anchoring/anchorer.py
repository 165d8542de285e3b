"""Idempotent anchoring of one settlement window: Merkle root -> one transaction -> confirmed AnchorReceipt.

The chain is the source of truth for "is this window anchored?": before sending, :class:`Anchorer` reads
``getAnchor(kind, window)``. After a crash between sending and recording the receipt, the replayed window finds
its root on-chain, looks the transaction up by its ``Anchored`` event and produces the same receipt, so a
window is never anchored twice and never lost (the contract's write-once rule backs this up against races).
Chain outages (connection errors, timeouts) are retried with capped exponential backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from eth_hash.auto import keccak
from web3.exceptions import ContractLogicError

from streams.anchoring.artifacts import revert_reason
from streams.anchoring.chain import AnchorRegistryClient, AnchorTx, OnChainAnchor
from streams.anchoring.merkle import MerkleTree
from streams.anchoring.windows import WindowBatch, WindowKey

log = logging.getLogger(__name__)
T = TypeVar("T")


class AnchorConflict(RuntimeError):
    """The window is already anchored with a different root or count (records changed after anchoring)."""

    def __init__(self, key: WindowKey, on_chain: OnChainAnchor, root: bytes, count: int):
        self.key, self.on_chain, self.root, self.count = key, on_chain, root, count
        super().__init__(
            f"{key.kind} {key.window_id} is anchored with root 0x{on_chain.root.hex()} over {on_chain.count} "
            f"records; recomputed 0x{root.hex()} over {count} records"
        )


class AnchorRejected(RuntimeError):
    """The contract refused the anchor for a reason retrying cannot fix (e.g. NotWriter: key not authorised);
    ``reason``: the contract's custom error name, when known."""

    def __init__(self, message: str, reason: str | None = None):
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class AnchorConfig:
    """Confirmations N (the mining block counts as 1); timeouts in seconds; ``max_attempts`` None = forever."""

    confirmations: int = 2
    receipt_timeout_s: float = 120.0
    confirm_timeout_s: float = 600.0
    max_attempts: int | None = None
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


def receipt_event_id(chain_id: int, contract: str, kind: str, window_id: str) -> str:
    """Deterministic AnchorReceipt id: replays of the same window give the same id."""
    return "0x" + keccak(f"anchor|{chain_id}|{contract.lower()}|{kind}|{window_id}".encode()).hex()


class Anchorer:
    """Anchors windows through one :class:`AnchorRegistryClient`.

    ``on_sent(tx_hash)`` runs right after a transaction is handed to the node (tests use it to simulate a
    crash there); ``sleep`` is injectable so backoff can be tested without waiting.
    """

    def __init__(
        self,
        client: AnchorRegistryClient,
        config: AnchorConfig | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_sent: Callable[[str], None] | None = None,
    ):
        self.client = client
        self.config = config or AnchorConfig()
        self._sleep = sleep
        self.on_sent = on_sent
        self.sent_txs: list[str] = []

    # -- public ---------------------------------------------------------------------------------------
    def anchor_window(self, batch: WindowBatch) -> dict[str, Any]:
        """Anchor ``batch`` (or find its existing anchor) and return the AnchorReceipt record."""
        if not len(batch):
            raise ValueError(f"window {batch.key.window_id} has no records; empty windows are not anchored")
        tree = MerkleTree.from_records(batch.records)
        return self._retrying(lambda: self._anchor_once(batch.key, tree), batch.key)

    # -- internals ------------------------------------------------------------------------------------
    def _retrying(self, fn: Callable[[], T], key: WindowKey) -> T:
        delay = self.config.backoff_initial_s
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except (AnchorConflict, AnchorRejected):
                raise
            except Exception as exc:
                if self.config.max_attempts is not None and attempt >= self.config.max_attempts:
                    raise
                log.warning(
                    "anchoring %s %s failed (attempt %d): %s; retrying in %.1fs",
                    key.kind,
                    key.window_id,
                    attempt,
                    exc,
                    delay,
                )
                self._sleep(delay)
                delay = min(delay * 2, self.config.backoff_max_s)

    def _anchor_once(self, key: WindowKey, tree: MerkleTree) -> dict[str, Any]:
        c = self.client
        existing = c.get_anchor(key.kind, key.window_id)
        tx: AnchorTx | None = None
        if existing is None:
            tx = self._send(key, tree)
            if tx is None:  # lost a race: someone else anchored in between
                existing = c.get_anchor(key.kind, key.window_id)
                if existing is None:
                    raise RuntimeError(f"{key.window_id}: AlreadyAnchored but no anchor visible yet")
        if existing is not None:
            if existing.root != tree.root or existing.count != len(tree):
                raise AnchorConflict(key, existing, tree.root, len(tree))
            tx = c.find_anchor_tx(key.kind, key.window_id, existing.block_number)
            if tx is None:
                raise RuntimeError(f"{key.window_id}: anchored in block {existing.block_number} but no event")
        assert tx is not None
        confirmations = c.wait_confirmations(
            tx.block_number, self.config.confirmations, self.config.confirm_timeout_s
        )
        after = c.get_anchor(key.kind, key.window_id)  # re-read after confirmations: survives a reorg
        if after is None or after.root != tree.root:
            raise RuntimeError(f"{key.window_id}: anchor vanished after confirmation (reorg?)")
        return self._receipt(key, tree, tx, confirmations)

    def _send(self, key: WindowKey, tree: MerkleTree) -> AnchorTx | None:
        c = self.client
        try:
            tx_hash = c.send_anchor(key.kind, key.window_id, tree.root, len(tree), key.start_ms, key.end_ms)
        except Exception as exc:  # gas estimation runs the call: a revert surfaces here
            reason = revert_reason(exc, "AnchorRegistry")
            if reason == "AlreadyAnchored":
                return None
            if reason is not None or isinstance(exc, ContractLogicError):
                raise AnchorRejected(
                    f"{key.window_id}: contract refused the anchor: {reason or exc}", reason
                ) from exc
            raise  # transport problem: retried by the caller
        self.sent_txs.append(tx_hash)
        if self.on_sent is not None:
            self.on_sent(tx_hash)
        receipt = c.wait_receipt(tx_hash, self.config.receipt_timeout_s)
        if receipt["status"] != 1:
            return None  # reverted: most likely AlreadyAnchored by a concurrent sender; the caller re-reads
        return AnchorTx(tx_hash, receipt["blockNumber"], receipt["gasUsed"])

    def _receipt(self, key: WindowKey, tree: MerkleTree, tx: AnchorTx, confirmations: int) -> dict[str, Any]:
        c = self.client
        chain_id = c.chain_id
        return {
            "event_id": receipt_event_id(chain_id, c.address, key.kind, key.window_id),
            "kind": key.kind,
            "window_id": key.window_id,
            "window_start": key.start_ms,
            "window_end": key.end_ms,
            "merkle_root": "0x" + tree.root.hex(),
            "record_count": len(tree),
            "chain_id": chain_id,
            "contract_address": c.address,
            "tx_hash": tx.tx_hash,
            "block_number": tx.block_number,
            "confirmations": confirmations,
            "gas_used": tx.gas_used,
            "anchored_at": c.block_timestamp_ms(tx.block_number),
        }
