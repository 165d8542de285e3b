"""Random but plausible VPP portfolios (for benchmarks and CLI demos): 10 % dispatchable generators, 30 % BESS,
40 % curtailable loads / EVSE, 20 % PV; sizes in kW, costs in micro-units per kWh."""

from __future__ import annotations

import numpy as np

from streams.vpp.assets import Asset, AssetKind, Direction

UPDOWN = frozenset({Direction.UP, Direction.DOWN})


def random_portfolio(n: int, seed: int = 0) -> list[Asset]:
    rng = np.random.default_rng(seed)
    out: list[Asset] = []
    for i in range(n):
        u = rng.random()
        if u < 0.1:
            p_max = float(rng.uniform(50, 500))
            on = bool(rng.random() < 0.6)
            out.append(
                Asset(
                    f"gen{i}",
                    AssetKind.GENERATOR,
                    p_max_kw=p_max,
                    p_min_kw=round(0.2 * p_max, 3),
                    current_kw=round(0.6 * p_max, 3) if on else 0.0,
                    is_on=on,
                    response_time_s=float(rng.choice([1, 5, 20])),
                    start_up_time_s=float(rng.choice([60, 300, 900])),
                    ramp_kw_per_s=float(rng.uniform(0.05, 2.0)),
                    directions=UPDOWN,
                    marginal_cost_micro_per_kwh=int(rng.integers(50_000, 300_000)),
                )
            )
        elif u < 0.4:
            out.append(
                Asset(
                    f"bess{i}",
                    AssetKind.BESS,
                    p_max_kw=float(rng.uniform(5, 100)),
                    energy_kwh=float(rng.uniform(10, 200)),
                    soc_pct=float(rng.uniform(20, 90)),
                    soc_min_pct=10.0,
                    response_time_s=0.5,
                    directions=UPDOWN,
                )
            )
        elif u < 0.8:
            kw = float(rng.uniform(1, 30))
            out.append(
                Asset(
                    f"load{i}",
                    AssetKind.CURTAILABLE_LOAD,
                    p_max_kw=kw,
                    current_kw=kw * float(rng.uniform(0.3, 1.0)),
                    response_time_s=float(rng.choice([2, 10, 30, 120])),
                    uncertainty_min=0.8,
                    uncertainty_max=1.2,
                )
            )
        else:
            kw = float(rng.uniform(3, 200))
            out.append(
                Asset(
                    f"pv{i}",
                    AssetKind.PV,
                    p_max_kw=kw,
                    current_kw=kw * float(rng.uniform(0, 1)),
                    response_time_s=2.0,
                    directions=frozenset({Direction.DOWN}),
                    uncertainty_min=0.8,
                    uncertainty_max=1.2,
                )
            )
    return out
