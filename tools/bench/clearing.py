"""``edream bench clearing``: time to clear one slot's book of 1k / 10k / 100k orders (goal: 100k < 100 ms).

Figures per size: latency percentiles of :func:`streams.market.clearing.clear` on a columnar book (volume, price,
per-order fills and trade arrays), one end-to-end run from ``BookOrder`` objects that also materialises the
``Match`` objects, throughput in orders/s and peak traced memory of one clearing.
"""

from __future__ import annotations

import random
import statistics
import time
import tracemalloc
from typing import Any

from streams.market.clearing import ClearingRule, OrderColumns, clear
from streams.market.orders import BookOrder, Side


def synthetic_book(n: int, seed: int = 7) -> list[BookOrder]:
    """Half bids, half offers; prices 0.05-0.25 /kWh on a 1-milli grid (many ties), 0.1-5 kWh, 1 h of arrivals."""
    rng = random.Random(seed)
    return [
        BookOrder(
            f"o{i:07d}",
            f"p{i % 997}",
            Side.BID if rng.random() < 0.5 else Side.OFFER,
            rng.randint(100, 5000),
            rng.randint(50, 250) * 1000,
            rng.randint(0, 3_600_000),
        )
        for i in range(n)
    ]


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _measure(n: int, budget_s: float, rule: ClearingRule) -> dict[str, Any]:
    book = synthetic_book(n)
    cols = OrderColumns.from_orders(book)
    lat: list[float] = []
    deadline = time.perf_counter() + budget_s
    while not lat or (time.perf_counter() < deadline and len(lat) < 200):
        t0 = time.perf_counter()
        r = clear(cols, rule)
        lat.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    full = clear(book, rule)
    _ = full.matches
    end_to_end = time.perf_counter() - t0
    tracemalloc.start()
    clear(cols, rule)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    p50 = statistics.median(lat)
    return {
        f"n{n}_runs": len(lat),
        f"n{n}_clear_p50_ms": round(p50 * 1e3, 3),
        f"n{n}_clear_p99_ms": round(_percentile(lat, 0.99) * 1e3, 3),
        f"n{n}_clear_min_ms": round(min(lat) * 1e3, 3),
        f"n{n}_orders_per_s": round(n / p50),
        f"n{n}_ns_per_order": round(p50 / n * 1e9, 1),
        f"n{n}_end_to_end_with_objects_ms": round(end_to_end * 1e3, 3),
        f"n{n}_peak_traced_mib": round(peak / 2**20, 2),
        f"n{n}_cleared_wh": r.cleared_wh,
        f"n{n}_trades": r.n_trades,
        f"n{n}_price_micro_per_kwh": r.price,
    }


def run(
    seconds: float = 5.0, sizes: tuple[int, ...] = (1_000, 10_000, 100_000), rule: str = "UNIFORM"
) -> dict:
    """Clear synthetic books of each size for ``seconds`` in total; returns flat JSON-ready figures."""
    out: dict[str, Any] = {"benchmark": "clearing", "rule": rule, "sizes": list(sizes), "seconds": seconds}
    for n in sizes:
        out.update(_measure(n, seconds / len(sizes), ClearingRule(rule)))
    big = max(sizes)
    out["goal_100k_under_100ms"] = bool(big >= 100_000 and out[f"n{big}_clear_p50_ms"] < 100)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), sort_keys=True))
