"""Grid congestion forecast on the largest simbench grid that ships: MV with all its LV subgrids
(``1-MVLV-urban-all-0-sw``: 10,458 buses, 11,542 loads, 806 PV, 135 transformers, 20,933 switches).

The demo community's profiles (households, PV, EV chargers, micro-CHP) are drawn for ``--prosumers`` prosumers and
placed on the LV buses that carry loads in index order (they replace those buses' own loads and PV), so 1,000 of them
fill the first LV grids and several MV/LV transformers overload: a stress case for the sensitivities. The rest of
the grid follows its simbench profiles. Every transformer is a congestion point. One 96-slot day-ahead forecast
(power flows, loading, voltage band, sensitivities of overloaded assets) is timed with power-grid-model; pandapower,
the reference, solves ``--pp-slots`` of the same scenarios (it takes about a second per flow on this grid) and its
96-slot time is extrapolated from them; the two engines' results are compared on those slots.

    edream bench grid [--grid 1-MVLV-urban-all-0-sw] [--prosumers 1000] [--pp-slots 4] [--day 2026-05-20] [--threads 0]
        [--sensitivity zone|grid]

The forecast runs twice: the first run also cuts out the zones of the overloaded assets (kept with the model, as in a
running stage); the second is the steady per-forecast cost.

Prints one JSON object: model build and conversion times, power flows/s per engine (wall and CPU of this process:
on a shared machine CPU is the steadier figure), forecast time, overloaded asset-slots and the sensitivity flows
they took, max engine differences.
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


class CountingEngine:
    """Counts the scenarios solved on the whole grid and on the zones (sensitivities), and the largest zone."""

    def __init__(self, engine: PgmEngine, counts: dict[str, int] | None = None, zone: bool = False):
        self.engine, self.name, self.zone = engine, engine.name, zone
        self.counts = counts if counts is not None else {"flows": 0, "zone_flows": 0, "zone_buses": 0}

    def for_model(self, model) -> CountingEngine:
        return CountingEngine(self.engine.for_model(model), self.counts, zone=True)

    def run(self, injections):
        if self.zone:
            self.counts["zone_flows"] += injections.scenarios
            self.counts["zone_buses"] = max(self.counts["zone_buses"], len(self.engine.model.net.bus))
        else:
            self.counts["flows"] += injections.scenarios
        return self.engine.run(injections)


def timed(fn):
    """(result, wall s, CPU s of this process): on a shared machine the CPU time is the steadier figure."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def run(
    seconds: float = 5.0,
    grid: str = "1-MVLV-urban-all-0-sw",
    prosumers: int = 1000,
    pp_slots: int = 4,
    day: str = "2026-05-20",
    threads: int = 0,
    sensitivity: str = "zone",
) -> dict:
    """``seconds`` is unused (the benchmark runs one fixed forecast); ``threads``: power-grid-model batch threads
    (0 sequential, -1 all cores); ``sensitivity``: "zone" (perturbed flows on each overloaded asset's zone) or
    "grid" (on the whole network); see the module docstring."""
    cfg, load_s, _ = timed(lambda: _config(grid, prosumers))
    model, build_s, _ = timed(lambda: build_grid_model(cfg))
    pgm, conv_s, _ = timed(lambda: PgmEngine(model, threading=threads))
    start = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)
    slots = start + np.arange(SLOTS, dtype=np.int64) * 900_000
    kw = forecast_matrix(model, community_forecast_kw(Community(prosumers), slots), SLOTS)
    inj = with_background(model, kw, slots)

    flows, pgm_wall, pgm_cpu = timed(lambda: pgm.run(inj))

    def forecast_once():
        return forecast_congestion(model, counting, inj, slots, sensitivity=sensitivity)

    counting = CountingEngine(pgm)
    _, first_wall, first_cpu = timed(forecast_once)
    counting = CountingEngine(pgm)  # again, as a running stage does: zone networks are kept with the model
    forecast, fc_wall, fc_cpu = timed(forecast_once)
    hot = [s for s in forecast if s.overloaded]

    pick = np.linspace(0, SLOTS - 1, pp_slots).round().astype(int)
    ref, pp_wall, pp_cpu = timed(lambda: PandapowerEngine(model).run(inj.take(pick)))
    both = flows.converged[pick] & ref.converged
    return {
        "grid": grid,
        "buses": len(model.net.bus),
        "loads": len(model.net.load),
        "sgens": len(model.net.sgen),
        "transformers": len(model.net.trafo),
        "prosumers": prosumers,
        "threads": threads,
        "sensitivity": sensitivity,
        "load_network_s": round(load_s, 2),
        "build_model_s": round(build_s, 2),
        "pgm_convert_s": round(conv_s, 2),
        "pgm_96_flows_s": round(pgm_wall, 3),
        "pgm_96_flows_cpu_s": round(pgm_cpu, 3),
        "pgm_flows_per_s": round(SLOTS / pgm_wall, 1),
        "pgm_flows_per_cpu_s": round(SLOTS / pgm_cpu, 1),
        "pgm_converged": int(flows.converged.sum()),
        "forecast_96_first_s": round(first_wall, 3),
        "forecast_96_first_cpu_s": round(first_cpu, 3),
        "forecast_96_s": round(fc_wall, 3),
        "forecast_96_cpu_s": round(fc_cpu, 3),
        "forecast_flows": counting.counts["flows"],
        "sensitivity_zone_flows": counting.counts["zone_flows"],
        "largest_zone_buses": counting.counts["zone_buses"],
        "overloaded_asset_slots": len(hot),
        "overloaded_assets": len({s.congestion_point_id for s in hot}),
        "max_loading_percent": round(float(np.nanmax(flows.loading_percent)), 1),
        "pp_slots": int(pp_slots),
        "pp_flows_per_s": round(pp_slots / pp_wall, 2),
        "pp_flows_per_cpu_s": round(pp_slots / pp_cpu, 2),
        "pp_96_flows_s_extrapolated": round(pp_wall / pp_slots * SLOTS, 1),
        "speedup_pgm_vs_pp_cpu": round((pp_cpu / pp_slots) / (pgm_cpu / SLOTS), 1),
        "max_loading_diff_points": round(
            float(np.abs(flows.loading_percent[pick][both] - ref.loading_percent[both]).max()), 4
        ),
        "max_voltage_diff_rel": float(f"{np.abs(flows.vm_pu[pick][both] / ref.vm_pu[both] - 1).max():.2e}"),
        "goal_forecast_s": 2.0,
    }
