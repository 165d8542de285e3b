"""``edream bench flex``: offer-optimisation time for 1,000 prosumers x 8 slots and deviation-detection throughput.

Figures:

* ``offer_*``: one :func:`streams.flex.offers.build_offer` end to end (evaluation of every prosumer/slot, model
  build, HiGHS solve) on a random mixed portfolio, per backend (``highspy`` direct matrix, ``pyomo`` + appsi) and
  for the LP and the MILP (activation cost per prosumer) variants; p50/p99 over repeats, plus the build/solve split.
* ``verify_*``: readings/s through :class:`streams.flex.verification.VerificationEngine` with every prosumer of
  the portfolio under order for one 15-min slot, 5-s readings, 10 % deviating part-way; detection latency in
  readings after the deviation became evident; peak traced memory of the engine.
"""

from __future__ import annotations

import resource
import statistics
import time
import tracemalloc
from typing import Any

from streams.flex.model import Direction
from streams.flex.offers import OfferParams, build_offer, build_problem
from streams.flex.optimiser import optimise
from streams.flex.orders import FlexOrder, OrderAllocation
from streams.flex.requests import FlexRequest, RequestSlot
from streams.flex.verification import VerificationEngine
from tools.sim.flex_portfolio import random_outlook, random_portfolio

T0 = 1_795_428_000_000  # 2026-11-23T10:00Z
SLOT_MS = 900_000


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _request(n_slots: int, kw: float) -> FlexRequest:
    return FlexRequest(
        "bench",
        "dso",
        "area-1",
        Direction.REDUCE,
        tuple(RequestSlot(T0 + k * SLOT_MS, kw) for k in range(n_slots)),
        200_000,
        T0,
        T0 - 1,
    )


def bench_offer(prosumers: int, slots: int, budget_s: float) -> dict[str, Any]:
    reg = random_portfolio(prosumers)
    outlook = random_outlook()
    cands = reg.in_area("area-1")
    # ask for ~40 % of the portfolio's typical down flexibility so the solution is a real selection
    probe = build_problem(_request(slots, 1.0), cands, outlook, OfferParams())
    kw = round(float(probe.cap_kw.sum(axis=0).min()) * 0.4, 1)
    req = _request(slots, kw)
    out: dict[str, Any] = {"offer_requested_kw_per_slot": kw}
    variants = [("highspy", 0), ("pyomo", 0), ("highspy", 2_000), ("pyomo", 2_000)]
    share = budget_s / len(variants)
    for backend, act in variants:
        params = OfferParams(backend=backend, activation_micro=act)
        tag = f"offer_{backend}_{'milp' if act else 'lp'}"
        lat, builds, solves = [], [], []
        deadline = time.perf_counter() + share
        while not lat or (time.perf_counter() < deadline and len(lat) < 50):
            t0 = time.perf_counter()
            offer = build_offer(req, cands, outlook, T0 - 1, params)
            lat.append(time.perf_counter() - t0)
            problem = build_problem(req, cands, outlook, params)
            sol = optimise(problem, backend)
            builds.append(sol.build_s)
            solves.append(sol.solve_s)
        out |= {
            f"{tag}_p50_s": round(statistics.median(lat), 4),
            f"{tag}_p99_s": round(_pct(lat, 0.99), 4),
            f"{tag}_model_build_p50_s": round(statistics.median(builds), 4),
            f"{tag}_solve_p50_s": round(statistics.median(solves), 4),
            f"{tag}_runs": len(lat),
            f"{tag}_status": offer.status,
            f"{tag}_selected": len({a.prosumer_id for a in offer.allocations}),
            f"{tag}_cost_micro": offer.cost_micro,
        }
    return out


def _engine_with_order(prosumers: int) -> tuple[VerificationEngine, list[str]]:
    ids = [f"p{i:05d}" for i in range(prosumers)]
    order = FlexOrder(
        "ord-bench",
        "off",
        "req",
        1,
        Direction.REDUCE,
        "ACTIVE",
        tuple(OrderAllocation(p, T0, 2.0, 5.0) for p in ids),
        15,
        T0 - 1,
    )
    engine = VerificationEngine()
    engine.apply_order(order)
    return engine, ids


def bench_verify(prosumers: int, budget_s: float) -> dict[str, Any]:
    stop_at = T0 + 300_000  # 10 % of prosumers stop delivering 5 min into the slot
    deviators = set(range(0, prosumers, 10))
    n = 0
    elapsed = 0.0
    latencies: list[int] = []
    slots_done = 0
    tracemalloc.start()
    engine, ids = _engine_with_order(prosumers)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    while elapsed < budget_s or slots_done == 0:
        engine, ids = _engine_with_order(prosumers)
        t0 = time.perf_counter()
        for ts in range(T0 + 5_000, T0 + SLOT_MS + 1, 5_000):
            for i, p in enumerate(ids):
                kw = 5.0 if (i in deviators and ts > stop_at) else 3.0
                for ev in engine.on_reading(p, ts, kw):
                    if ev.kind == "PROJECTED":
                        latencies.append((ev.ts - (stop_at + 5_000)) // 5_000)
            n += len(ids)
        engine.advance_to(T0 + SLOT_MS)
        elapsed += time.perf_counter() - t0
        slots_done += 1
    return {
        "verify_prosumers": prosumers,
        "verify_readings": n,
        "verify_readings_per_s": round(n / elapsed),
        "verify_detected": len(latencies),
        "verify_expected_deviators": len(deviators) * slots_done,
        "verify_detection_latency_readings_max": max(latencies) if latencies else None,
        "verify_engine_peak_traced_bytes": peak,
    }


def run(seconds: float = 5.0, prosumers: int = 1000, slots: int = 8) -> dict[str, Any]:
    """Offer optimisation gets 2/3 of ``seconds``, verification 1/3 (each variant runs at least once)."""
    result: dict[str, Any] = {"prosumers": prosumers, "slots": slots, "seconds": seconds}
    result |= bench_offer(prosumers, slots, seconds * 2 / 3)
    result |= bench_verify(prosumers, seconds / 3)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(), sort_keys=True))
