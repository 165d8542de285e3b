"""Event-style DR baseline report (issue 17): every preset of :mod:`streams.analytics.baseline_events` on the
simbench fleet of :mod:`tools.analytics_eval`.

Usage: ``.venv/bin/python -m tools.baseline_report [--households 30] [--native-minutes 15|60]``. Each working
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

from streams.analytics.baseline_events import PRESETS, EventWindow, evaluate_events
from streams.analytics.baselines import SLOTS_PER_DAY, day_kinds
from tools.analytics_eval import fleet


def _hourly_meter(kw: np.ndarray) -> np.ndarray:
    """Quarter-hour rows of hourly meter means (each hour's mean repeated over its four quarter hours)."""
    return np.repeat(kw.reshape(kw.shape[0], -1, 4).mean(axis=2), 4, axis=1)


def run(households: int, native_minutes: int, seed: int = 7) -> dict:
    ms, kw, events = fleet(120, 365, seed)
    days = kw.shape[0] // SLOTS_PER_DAY
    kind = day_kinds(ms[::SLOTS_PER_DAY])
    native = native_minutes // 15
    grid = (lambda x: _hourly_meter(x)) if native == 4 else (lambda x: x)
    no_events = np.zeros(days, dtype=bool)
    portfolio = grid(kw.sum(axis=1).reshape(days, SLOTS_PER_DAY))
    out: dict = {"households": households, "native_minutes": native_minutes, "event": "17:00-20:00 UTC"}
    out["presets"] = {}
    for p in PRESETS:
        port = evaluate_events(portfolio, kind, no_events, p, EventWindow(), native)
        per = [
            evaluate_events(
                grid(kw[:, i].reshape(days, SLOTS_PER_DAY)), kind, events[:, i], p, EventWindow(), native
            )
            for i in range(households)
        ]
        out["presets"][p.name] = {
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
    a = ap.parse_args()
    t0 = time.perf_counter()
    out = run(a.households, a.native_minutes)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(table(out) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
