"""``edream bench anchor``: anchoring cost for settlement windows of 10 / 1,000 / 100,000 records.

Per window size, on a fresh embedded anvil (instant mining, 1 confirmation): end-to-end anchoring latency
(canonical encoding + leaf hashing + Merkle tree + one ``anchor`` transaction + receipt) as p50/p99 over as many
windows as fit in the time budget, records anchored per second, gas per window and per record, proof size
(hashes and bytes) and the time to verify one proof, plus peak traced memory of building one tree.
Goal: gas per window constant in the record count, proof size logarithmic.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from web3 import Web3

from edream.embedded.anvil import EmbeddedAnvil, ensure_deployed
from streams.anchoring.anchorer import AnchorConfig, Anchorer
from streams.anchoring.chain import AnchorRegistryClient
from streams.anchoring.keys import load_account
from streams.anchoring.merkle import MerkleTree, leaf_hash, verify_proof
from streams.anchoring.windows import WindowBatch, WindowKey
from tools.sim.settlements import synthetic_settlement


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _batch(n: int, slot: int) -> WindowBatch:
    key = WindowKey.containing("FLEX", synthetic_settlement(0, slot=slot)["window_start"], 15 * 60_000)
    batch = WindowBatch(key)
    for i in range(n):
        batch.add(synthetic_settlement(i, slot=slot))
    return batch


def _size_figures(anchorer: Anchorer, n: int, budget_s: float, first_slot: int) -> tuple[dict[str, Any], int]:
    latencies: list[float] = []
    gas: list[int] = []
    slot = first_slot
    deadline = time.perf_counter() + budget_s
    while not latencies or (time.perf_counter() < deadline and len(latencies) < 200):
        batch = _batch(n, slot)
        t = time.perf_counter()
        receipt = anchorer.anchor_window(batch)
        latencies.append(time.perf_counter() - t)
        gas.append(receipt["gas_used"])
        slot += 1
    records = [synthetic_settlement(i, slot=first_slot) for i in range(n)]
    tracemalloc.start()
    tree = MerkleTree.from_records(records)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    leaf = leaf_hash(records[n // 2])
    proof = tree.proof(leaf)
    t = time.perf_counter()
    assert verify_proof(leaf, proof, tree.root)
    verify_us = (time.perf_counter() - t) * 1e6
    total = sum(latencies)
    return {
        f"n{n}_windows": len(latencies),
        f"n{n}_latency_p50_ms": round(_percentile(latencies, 0.5) * 1000, 2),
        f"n{n}_latency_p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        f"n{n}_records_per_s": round(n * len(latencies) / total, 1),
        f"n{n}_gas_per_window": int(statistics.median(gas)),
        f"n{n}_gas_per_record": round(statistics.median(gas) / n, 2),
        f"n{n}_proof_hashes": len(proof),
        f"n{n}_proof_bytes": 32 * len(proof),
        f"n{n}_verify_proof_us": round(verify_us, 1),
        f"n{n}_tree_peak_mem_mb": round(peak / 2**20, 2),
    }, slot


def run(seconds: float = 5.0, sizes: str = "10,1000,100000", **params: Any) -> dict[str, Any]:
    """Run the benchmark; ``sizes`` is a comma-separated list of records per window."""
    ns = [int(s) for s in str(sizes).split(",") if s]
    out: dict[str, Any] = {
        "bench": "anchor",
        "seconds": seconds,
        "sizes": ns,
        "chain": "anvil (embedded)",
        "confirmations": 1,
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedAnvil(Path(tmp), block_time_s=None, persist=False) as node,
    ):
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        account = load_account(embedded_chain=True, env={})
        address = ensure_deployed(w3, account, Path(tmp))["AnchorRegistry"]
        client = AnchorRegistryClient(w3, address, account, poll_s=0.01)
        anchorer = Anchorer(client, AnchorConfig(confirmations=1, max_attempts=3))
        slot = 0
        for n in ns:
            figures, slot = _size_figures(anchorer, n, seconds / len(ns), slot)
            out.update(figures)
    return out


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run()))
