"""Event-style DR baseline report (issue 17): every preset of :mod:`streams.analytics.baseline_events` on the
simbench fleet of :mod:`tools.analytics_eval`.

Usage: ``.venv/bin/python -m tools.baseline_report [--households 30] [--native-minutes 15|60]
[--fleet simbench|heatpump] [--seed 7]``. Each working
day that is not an event day gets a pseudo event 17:00-20:00 UTC; the CBL of those hours is scored hourly
against the metered load. Per preset: portfolio (sum of 120 households) NMBE and CV(RMSE), and over single
households the median NMBE, the largest |NMBE| and the median CV(RMSE). ``--native-minutes 60`` turns the
fleet into hourly meters (forward-filled into quarter hours, as a CSV of hourly data would be) to show the
window rule keeps unfinished hours out. Prints a markdown table, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from streams.analytics.baseline_events import PRESETS, EventWindow, evaluate_cbl, evaluate_events
from streams.analytics.baseline_weather import WEATHER_ROW, event_cbl
from streams.analytics.baselines import SLOTS_PER_DAY, day_kinds
from tools.analytics_eval import fleet
from tools.sim.heat_pumps import heat_pump_fleet


def _hourly_meter(kw: np.ndarray) -> np.ndarray:
    """Quarter-hour rows of hourly meter means (each hour's mean repeated over its four quarter hours)."""
    return np.repeat(kw.reshape(kw.shape[0], -1, 4).mean(axis=2), 4, axis=1)


def run(households: int, native_minutes: int, seed: int = 7, fleet_name: str = "simbench") -> dict:
    """Every preset (and, on the heat-pump fleet, the weather regression baseline with the day's measured mean
    temperature) on the portfolio and on ``households`` single households."""
    temp = None
    if fleet_name == "heatpump":
        hp = heat_pump_fleet(120, seed)
        ms, kw, events, temp = hp.ms, hp.kw, hp.events, hp.daily_temp_c()
    else:
        ms, kw, events = fleet(120, 365, seed)
    days = kw.shape[0] // SLOTS_PER_DAY
    kind = day_kinds(ms[::SLOTS_PER_DAY])
    native = native_minutes // 15
    grid = (lambda x: _hourly_meter(x)) if native == 4 else (lambda x: x)
    no_events = np.zeros(days, dtype=bool)
    portfolio = grid(kw.sum(axis=1).reshape(days, SLOTS_PER_DAY))
    out: dict = {
        "fleet": fleet_name,
        "households": households,
        "native_minutes": native_minutes,
        "event": "17:00-20:00 UTC",
    }
    out["presets"] = {}
    loads = [grid(kw[:, i].reshape(days, SLOTS_PER_DAY)) for i in range(households)]
    evaluations = {
        p.name: lambda load, excluded, p=p: evaluate_events(load, kind, excluded, p, EventWindow(), native)
        for p in PRESETS
    }
    if temp is not None:
        ev = slice(EventWindow().start_slot, EventWindow().start_slot + EventWindow().slots)
        evaluations[WEATHER_ROW] = lambda load, excluded: evaluate_cbl(
            load, kind, excluded, event_cbl(load, temp, kind, excluded, ev)
        )
    for name, evaluate in evaluations.items():
        port = evaluate(portfolio, no_events)
        per = [evaluate(loads[i], events[:, i]) for i in range(households)]
        out["presets"][name] = {
            "portfolio_nmbe": port["nmbe"],
            "portfolio_cv_rmse": port["cv_rmse"],
            "portfolio_events": port["events"],
            "household_median_nmbe": float(np.median([r["nmbe"] for r in per])),
            "household_max_abs_nmbe": float(np.max([abs(r["nmbe"]) for r in per])),
            "household_median_cv_rmse": float(np.median([r["cv_rmse"] for r in per])),
        }
    return out


def table(out: dict) -> str:
    rows = [
        "| preset | portfolio NMBE | portfolio CV(RMSE) | household median NMBE | household max abs NMBE "
        "| household median CV(RMSE) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in out["presets"].items():
        rows.append(
            f"| {name} | {r['portfolio_nmbe'] * 100:+.1f} % | {r['portfolio_cv_rmse'] * 100:.1f} % | "
            f"{r['household_median_nmbe'] * 100:+.1f} % | {r['household_max_abs_nmbe'] * 100:.1f} % | "
            f"{r['household_median_cv_rmse'] * 100:.1f} % |"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=30)
    ap.add_argument("--native-minutes", type=int, default=15, choices=(15, 60))
    ap.add_argument(
        "--fleet",
        default="simbench",
        choices=("simbench", "heatpump"),
        help="heatpump: the households with heat pumps on a test reference year (tools/sim/heat_pumps.py), "
        "which adds the weather regression baseline",
    )
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    t0 = time.perf_counter()
    out = run(a.households, a.native_minutes, a.seed, a.fleet)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(table(out) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
