"""Benchmark of the VPP area: capability MILP time for 100 / 1,000 / 10,000 assets, and clustering throughput.

``run()`` returns a flat dict: per portfolio size (``cap_<n>_*``: highspy fast path; ``cap_<n>_pyomo_*``: the
Pyomo reference) the model build time, the HiGHS solve time, total p50/p95, status, MIP gap, capacity and RSS;
the profiler's throughput (15-minute intervals folded per second), the River online k-means update/assign
throughput (profiles per second) and the batch build time; peak RSS (psutil).
"""

from __future__ import annotations

import resource
import time
from typing import Any

import numpy as np
import psutil

from streams.vpp.assets import SERVICES
from streams.vpp.capability import Backend, CapabilityRequest, evaluate_capability
from streams.vpp.clustering import ProfileClusterer
from streams.vpp.profiles import SLOT_MS, LoadProfiler
from tools.sim.vpp_archetypes import ARCHETYPES, archetype_days
from tools.sim.vpp_portfolio import random_portfolio

MONDAY_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday
DAY_MS = 86_400_000


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def _peak_rss_mb() -> float:
    """Peak RSS of this process so far (MB; Linux reports ru_maxrss in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def bench_capability(
    n: int, slots: int, service: str, seed: int = 0, repeats: int = 5, backend: Backend = "highspy"
) -> dict[str, Any]:
    """``repeats`` capability evaluations of one random portfolio of ``n`` assets (same request each time).

    Reports medians of the build (arrays + model hand-over to HiGHS) and solve (HiGHS) times, p50/p95 of the
    total wall time per evaluation (s), the last run's solver status, MIP gap and capacity, and RSS (MB)."""
    assets = random_portfolio(n, seed)
    demand = sum(a.current_kw for a in assets if a.kind == "GENERATOR" and a.is_on)
    req = CapabilityRequest(f"bench-{n}", SERVICES[service], 0, slots * 900_000, demand_kw=(demand,) * slots)
    builds, solves, totals = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = evaluate_capability(assets, req, backend=backend)
        totals.append(time.perf_counter() - t0)
        builds.append(r.build_seconds)
        solves.append(r.solve_seconds)
    key = f"cap_{n}" if backend == "highspy" else f"cap_{n}_{backend}"
    return {
        f"{key}_generators": sum(1 for a in assets if a.kind == "GENERATOR"),
        f"{key}_runs": repeats,
        f"{key}_build_s": round(float(np.median(builds)), 3),
        f"{key}_solve_s": round(float(np.median(solves)), 3),
        f"{key}_total_p50_s": round(float(np.percentile(totals, 50)), 3),
        f"{key}_total_p95_s": round(float(np.percentile(totals, 95)), 3),
        f"{key}_capacity_kw": round(r.capacity_kw, 1),
        f"{key}_generation_cost_micro": r.generation_cost_micro,
        f"{key}_feasible": r.feasible,
        f"{key}_solver_status": r.solver_status,
        f"{key}_mip_gap": None if r.mip_gap is None else float(f"{r.mip_gap:.2e}"),
        f"{key}_rss_mb": round(_rss_mb(), 1),
        f"{key}_peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def bench_clustering(seconds: float, prosumers: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    data = {f"p{i}": archetype_days(ARCHETYPES[i % 3], 0, 14, rng) for i in range(prosumers)}
    # profiler: interval by interval, as from meter.intervals.15m.v1
    profiler = LoadProfiler()
    n_int, t0 = 0, time.perf_counter()
    for pid, days in data.items():
        for d, day in enumerate(days):
            for s, wh in enumerate(day):
                profiler.add(pid, MONDAY_MS + d * DAY_MS + s * SLOT_MS, float(wh))
            n_int += 96
        if time.perf_counter() - t0 > seconds / 3:
            break
    t_int = time.perf_counter() - t0
    for pid, days in data.items():  # make sure every prosumer has a profile
        for d, day in enumerate(days):
            profiler.add_day(pid, MONDAY_MS + d * DAY_MS, day)
    feats = {pid: profiler.features(pid) for pid in data}
    c = ProfileClusterer(seed=seed)
    t0 = time.perf_counter()
    c.build(feats, k=3)
    t_build = time.perf_counter() - t0
    ids = list(feats)
    n_upd, lat = 0, []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds / 3:
        pid = ids[n_upd % len(ids)]
        t1 = time.perf_counter()
        c.learn(pid, feats[pid])
        lat.append(time.perf_counter() - t1)
        n_upd += 1
    t_upd = time.perf_counter() - t0
    lat_ms = np.asarray(lat) * 1000
    return {
        "profiler_intervals_per_s": round(n_int / t_int),
        "cluster_build_s": round(t_build, 3),
        "cluster_build_prosumers": len(ids),
        "cluster_updates_per_s": round(n_upd / t_upd),
        "cluster_update_p50_ms": round(float(np.percentile(lat_ms, 50)), 4),
        "cluster_update_p99_ms": round(float(np.percentile(lat_ms, 99)), 4),
    }


def run(
    seconds: float = 5.0,
    sizes: str = "100,1000,10000",
    slots: int = 4,
    service: str = "STATIC_FFR",
    prosumers: int = 300,
    seed: int = 0,
    repeats: int = 5,
    reference_repeats: int = 1,
) -> dict[str, Any]:
    """Run both benchmarks; ``sizes`` comma-separated portfolio sizes, ``slots`` 15-min slots per request;
    ``repeats`` evaluations per size on the highspy fast path, ``reference_repeats`` on the Pyomo reference
    (0 = skip it)."""
    out: dict[str, Any] = {
        "sizes": sizes,
        "slots": slots,
        "service": service,
        "prosumers": prosumers,
        "seconds": seconds,
    }
    peak = _rss_mb()
    for n in (int(x) for x in str(sizes).split(",")):
        out.update(bench_capability(n, slots, service, seed, repeats))
        peak = max(peak, _rss_mb())
    for n in (int(x) for x in str(sizes).split(",")) if reference_repeats > 0 else ():
        out.update(bench_capability(n, slots, service, seed, reference_repeats, backend="pyomo"))
        peak = max(peak, _rss_mb())
    out.update(bench_clustering(seconds, prosumers, seed))
    out["peak_rss_mb"] = round(max(peak, _rss_mb()), 1)
    return out


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run()))
