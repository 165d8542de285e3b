"""``edream bench market_network``: network-aware clearing time per session (50 / 500 participants, 3 congestion
points: a transformer and two feeders under it).

Each participant places one order per session (a bid or an offer, 0.1-3 kWh, 0.05-0.25 /kWh); 90 % sit behind the
transformer (a third of those on each feeder), the rest elsewhere. Each congestion point's capacity is half the
unconstrained result's flow through it in that direction (the other direction free), so the limits bind: the
figures are for the LP path, not the reference short-cut. Per size: the p50/max time of :func:`~streams.market.network_clearing.clear_with_network` (reference clearing, LP,
canonical fills, pairing), of the unconstrained :func:`~streams.market.clearing.clear` alone, of HiGHS's run, the
share of constrained sessions and the mean welfare given up to the limits.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from streams.market.clearing import OrderColumns, clear
from streams.market.network_clearing import (
    CongestionLimit,
    Network,
    NetworkStatus,
    clear_with_network,
    zone_flows,
)
from streams.market.orders import BookOrder, Side


def session(n: int, seed: int) -> tuple[list[BookOrder], Network]:
    """One session's book of ``n`` participants and its network (deterministic per seed)."""
    rng = random.Random(seed)
    zones: dict[str, frozenset[str]] = {}
    book = []
    for i in range(n):
        pid = f"p{i:04d}"
        if i % 10:  # 90 % behind the transformer
            zones[pid] = frozenset({"T", "F1"} if i % 3 == 0 else {"T", "F2"} if i % 3 == 1 else {"T"})
        side = Side.OFFER if rng.random() < 0.55 else Side.BID
        book.append(
            BookOrder(
                f"o{i:04d}",
                pid,
                side,
                rng.randint(100, 3000),
                rng.randint(50, 250) * 1000,
                rng.randrange(600),
            )
        )
    free = Network(tuple(CongestionLimit(c, 10**12, 10**12) for c in ("T", "F1", "F2")), zones)
    flows = zone_flows(OrderColumns.from_orders(book), clear(book).fill_wh, free)
    limits = tuple(  # half the unconstrained flow in its direction, the other direction free
        CongestionLimit(c, -f // 2 if f < 0 else 10**12, f // 2 if f > 0 else 10**12)
        for c, f in flows.items()
    )
    return book, Network(limits, zones)


def _measure(n: int, sessions: int) -> dict[str, Any]:
    net_s, ref_s, lp_s, losses, constrained, failed = [], [], [], [], 0, 0
    for seed in range(sessions):
        book, network = session(n, seed)
        t0 = time.perf_counter()
        clear(book)
        ref_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        r = clear_with_network(book, network)
        net_s.append(time.perf_counter() - t0)
        if r.status is NetworkStatus.CONSTRAINED:
            constrained += 1
            lp_s.append(r.lp_seconds)
        failed += r.status is NetworkStatus.FAILED
        if r.reference_welfare_micro:
            losses.append(r.welfare_loss_micro / r.reference_welfare_micro)
    return {
        f"n{n}_sessions": sessions,
        f"n{n}_network_clear_p50_ms": round(statistics.median(net_s) * 1e3, 2),
        f"n{n}_network_clear_max_ms": round(max(net_s) * 1e3, 2),
        f"n{n}_reference_clear_p50_ms": round(statistics.median(ref_s) * 1e3, 3),
        f"n{n}_highs_run_p50_ms": round(statistics.median(lp_s) * 1e3, 2) if lp_s else None,
        f"n{n}_constrained_share": round(constrained / sessions, 2),
        f"n{n}_failed": failed,
        f"n{n}_mean_welfare_loss_pct": round(100 * statistics.mean(losses), 2) if losses else None,
    }


def run(seconds: float = 5.0, sizes: tuple[int, ...] = (50, 500), sessions: int = 0) -> dict:
    """``sessions`` per size (default: 40, fewer when ``seconds`` is short); returns flat JSON-ready figures."""
    count = sessions or max(3, min(40, int(seconds * 8)))
    out: dict[str, Any] = {"benchmark": "market_network", "sizes": list(sizes), "congestion_points": 3}
    for n in sizes:
        out.update(_measure(n, count))
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), sort_keys=True))
