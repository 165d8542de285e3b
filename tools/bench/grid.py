"""Grid congestion forecast on the largest simbench grid that ships: MV with all its LV subgrids
(``1-MVLV-urban-all-0-sw``: 10,458 buses, 11,542 loads, 806 PV, 135 transformers, 20,933 switches).

The demo community's profiles (households, PV, EV chargers, micro-CHP) are drawn for ``--prosumers`` prosumers and
placed round robin on the LV buses that carry loads (they replace those buses' own loads and PV); the rest of the grid
follows its simbench profiles. Every transformer is a congestion point. One 96-slot day-ahead forecast
(power flows, loading, voltage band, sensitivities of overloaded assets) is timed with power-grid-model; pandapower,
the reference, solves ``--pp-slots`` of the same scenarios (it takes about a second per flow on this grid) and its
96-slot time is extrapolated from them; the two engines' results are compared on those slots.

    edream bench grid [--grid 1-MVLV-urban-all-0-sw] [--prosumers 1000] [--pp-slots 4] [--day 2026-05-20]

Prints one JSON object: model build and conversion times, power flows/s per engine, forecast time, overloaded
asset-slots and the sensitivity flows they took, max engine differences.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np

from edream.demo.community import Community
from edream.demo.grid import community_forecast_kw
from streams.grid.background import with_background
from streams.grid.config import GridConfig
from streams.grid.congestion import forecast_congestion, forecast_matrix
from streams.grid.model import build_grid_model
from streams.grid.network import load_network
from streams.grid.pgm_engine import PgmEngine
from streams.grid.pp_engine import PandapowerEngine

SLOTS = 96


def _config(code: str, prosumers: int) -> GridConfig:
    net = load_network(f"simbench:{code}")
    lv_buses = sorted(int(b) for b in set(net.load.bus) if net.bus.at[b, "vn_kv"] < 1.0)
    community = Community(prosumers)
    return GridConfig.model_validate(
        {
            "network": f"simbench:{code}",
            "background": "simbench-profiles",
            "congestion_points": [
                {
                    "id": f"trafo-{i}",
                    "area_id": f"area-trafo-{i}",
                    "asset": {"kind": "trafo", "index": int(i)},
                }
                for i in net.trafo.index[net.trafo.in_service]
            ],
            "prosumers": [
                {"prosumer_id": p.prosumer_id, "bus": lv_buses[k % len(lv_buses)]}
                for k, p in enumerate(community.prosumers)
            ],
            "source": f"bench:{code}",
        }
    )


def run(
    seconds: float = 5.0,
    grid: str = "1-MVLV-urban-all-0-sw",
    prosumers: int = 1000,
    pp_slots: int = 4,
    day: str = "2026-05-20",
) -> dict:
    """``seconds`` is unused (the benchmark runs one fixed forecast); see the module docstring."""
    t0 = time.perf_counter()
    cfg = _config(grid, prosumers)
    t_load = time.perf_counter()
    model = build_grid_model(cfg)
    t_model = time.perf_counter()
    pgm = PgmEngine(model)
    t_conv = time.perf_counter()
    start = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)
    slots = start + np.arange(SLOTS, dtype=np.int64) * 900_000
    kw = forecast_matrix(model, community_forecast_kw(Community(prosumers), slots), SLOTS)
    inj = with_background(model, kw, slots)

    t = time.perf_counter()
    flows = pgm.run(inj)
    pgm_96 = time.perf_counter() - t
    t = time.perf_counter()
    forecast = forecast_congestion(model, pgm, inj, slots)
    forecast_s = time.perf_counter() - t
    hot = [s for s in forecast if s.overloaded]
    sens_flows = len(
        {
            (s.slot_start, model.prosumer_buses[model.prosumer_ids.index(p)])
            for s in hot
            for p in s.sensitivity
        }
    )

    pick = np.linspace(0, SLOTS - 1, pp_slots).round().astype(int)
    t = time.perf_counter()
    ref = PandapowerEngine(model).run(inj.take(pick))
    pp_s = time.perf_counter() - t
    both = flows.converged[pick] & ref.converged
    return {
        "grid": grid,
        "buses": len(model.net.bus),
        "loads": len(model.net.load),
        "sgens": len(model.net.sgen),
        "transformers": len(model.net.trafo),
        "prosumers": prosumers,
        "load_network_s": round(t_load - t0, 2),
        "build_model_s": round(t_model - t_load, 2),
        "pgm_convert_s": round(t_conv - t_model, 2),
        "pgm_96_flows_s": round(pgm_96, 3),
        "pgm_flows_per_s": round(SLOTS / pgm_96, 1),
        "pgm_converged": int(flows.converged.sum()),
        "forecast_96_s": round(forecast_s, 3),
        "overloaded_asset_slots": len(hot),
        "overloaded_assets": len({s.congestion_point_id for s in hot}),
        "sensitivity_flows": sens_flows,
        "max_loading_percent": round(float(np.nanmax(flows.loading_percent)), 1),
        "pp_slots": int(pp_slots),
        "pp_flows_per_s": round(pp_slots / pp_s, 2),
        "pp_96_flows_s_extrapolated": round(pp_s / pp_slots * SLOTS, 1),
        "speedup_pgm_vs_pp": round((pp_s / pp_slots) / (pgm_96 / SLOTS), 1),
        "max_loading_diff_points": round(
            float(np.abs(flows.loading_percent[pick][both] - ref.loading_percent[both]).max()), 4
        ),
        "max_voltage_diff_rel": float(f"{np.abs(flows.vm_pu[pick][both] / ref.vm_pu[both] - 1).max():.2e}"),
        "goal_forecast_s": 2.0,
    }
