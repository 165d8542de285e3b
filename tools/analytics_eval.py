"""Score forecasting and baselines on a realistic synthetic fleet built from simbench household profiles.

Usage: ``.venv/bin/python -m tools.analytics_eval [--households 120] [--days 365] [--seed 7]``; prints one JSON
object (last line) with the figures quoted in the README.

Fleet: every household takes one of simbench's six H0 standard household load profiles (2016, 15-minute,
installed with the package, no network), a random annual consumption (log-normal around 3.5 MWh), a random time
shift of up to +-30 minutes plus a random whole number of weeks (up to +-6, so
households built on the same measured profile do not repeat each other's days), a persistent day-level factor (AR(1) in log space: occupancy/weather) and i.i.d.
multiplicative quarter-hour noise (log-normal, sigma 0.35). 4 % of the days of each household are DR event days
(load cut 30 % between 17:00 and 20:00) which baselines must exclude and are not scored.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from streams.analytics.baselines import HALF_ADDITIVE_12H, MULTIPLICATIVE_20, SLOTS_PER_DAY, BaselineConfig
from streams.analytics.evaluate import Series, evaluate_baseline, evaluate_forecast

STEP_MS = 900_000
YEAR_START_MS = 1_451_606_400_000  # 2016-01-01 00:00 UTC
H0 = ("H0-A_pload", "H0-B_pload", "H0-C_pload", "H0-G_pload", "H0-H_pload", "H0-L_pload")


def household_profiles() -> tuple[np.ndarray, np.ndarray]:
    """(UTC epoch ms of each quarter hour of 2016, normalised H0 profiles [steps, 6]).

    simbench stamps are German local time with DST (an hour missing in March, repeated in October); the rows
    are a gap-free sequence of 366 x 96 quarter hours, so they are put on a regular grid from 2016-01-01 00:00.
    """
    import simbench as sb

    load = sb.get_all_simbench_profiles(0)["load"]
    ms = YEAR_START_MS + np.arange(len(load), dtype=np.int64) * STEP_MS
    return ms, load[list(H0)].to_numpy(dtype=float)


def fleet(
    n: int = 120, days: int = 365, seed: int = 7, weeks: int = 6
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ts ms [steps], household kW [steps, n], event-day flags [days, n])."""
    rng = np.random.default_rng(seed)
    ms, prof = household_profiles()
    steps = days * SLOTS_PER_DAY
    prof_year = prof
    ms = ms[:steps]
    kw = np.empty((steps, n))
    events = rng.random((days, n)) < 0.04
    for i in range(n):
        shift = int(rng.integers(-weeks, weeks + 1)) * 7 * SLOTS_PER_DAY + int(rng.integers(-2, 3))
        p = np.roll(prof_year[:, rng.integers(len(H0))], shift)[:steps]
        annual_kwh = float(rng.lognormal(np.log(3500), 0.35))
        p = p / p.mean() * annual_kwh / 8784  # mean kW
        x = np.empty(days)
        x[0] = 0.0
        for d in range(1, days):
            x[d] = 0.7 * x[d - 1] + rng.normal(0.0, 0.1)
        p = p * np.repeat(np.exp(x), SLOTS_PER_DAY) * rng.lognormal(0.0, 0.35, steps)
        day_view = p.reshape(days, SLOTS_PER_DAY)
        day_view[events[:, i], 68:80] *= 0.7
        kw[:, i] = p
    return ms, kw, events


BASELINES = {
    "10of10": BaselineConfig("AVERAGE_Y", x=10, y=10),
    "high4of5": BaselineConfig("HIGH_X_OF_Y", x=4, y=5),
    "high4of5_add": BaselineConfig("HIGH_X_OF_Y", x=4, y=5, adjust="additive", cap=0.2),
    "mid4of6_mult": BaselineConfig("MID_X_OF_Y", x=4, y=6, adjust="multiplicative", cap=0.2),
    "10of10_add": BaselineConfig("AVERAGE_Y", x=10, y=10, adjust="additive", cap=0.2),
    "10of10_mult": MULTIPLICATIVE_20,
    "comparative": BaselineConfig("COMPARATIVE_DAY", x=10, y=10, comparative_k=3),
    "10of10_half_add_12h": HALF_ADDITIVE_12H,
}


def _day_ms(ms: np.ndarray) -> np.ndarray:
    return ms[::SLOTS_PER_DAY]


def run(households: int = 120, days: int = 365, seed: int = 7, single: int = 30) -> dict[str, Any]:
    t0 = time.perf_counter()
    ms, kw, events = fleet(households, days, seed)
    out: dict[str, Any] = {"households": households, "days": days, "seed": seed}
    agg_kw = kw.sum(axis=1)
    agg = Series(ms, agg_kw * 250.0, STEP_MS)  # Wh per quarter hour
    out["forecast_portfolio"] = {
        f"{h}/{m}": evaluate_forecast(agg, h, m)
        for h in ("day-ahead", "intra-day", "hour-ahead")
        for m in ("linear", "profile", "seasonal-naive")
    }
    out["forecast_portfolio"]["day-ahead/holt-winters"] = evaluate_forecast(agg, "day-ahead", "holt-winters")
    one = [
        evaluate_forecast(Series(ms, kw[:, i] * 250.0, STEP_MS), "day-ahead") for i in range(min(single, 10))
    ]
    out["forecast_household_day_ahead_median"] = {
        k: float(np.median([r[k] for r in one])) for k in ("nmae", "mase")
    }
    load = agg_kw.reshape(days, SLOTS_PER_DAY)
    no_events = np.zeros(days, dtype=bool)
    out["baseline_portfolio"] = {
        name: evaluate_baseline(load, _day_ms(ms), no_events, cfg) for name, cfg in BASELINES.items()
    }
    per: dict[str, list[dict[str, Any]]] = {name: [] for name in BASELINES}
    for i in range(min(single, households)):
        hl = kw[:, i].reshape(days, SLOTS_PER_DAY)
        for name, cfg in BASELINES.items():
            per[name].append(evaluate_baseline(hl, _day_ms(ms), events[:, i], cfg))
    out["baseline_household_median"] = {
        name: {
            "cv_rmse": float(np.median([r["cv_rmse"] for r in rs])),
            "nmbe": float(np.median([r["nmbe"] for r in rs])),
            "max_abs_nmbe": float(np.max([abs(r["nmbe"]) for r in rs])),
        }
        for name, rs in per.items()
    }
    ref = [r["cv_rmse"] for r in per["10of10"]]
    for name, rs in per.items():
        below = sum(r["cv_rmse"] < c for r, c in zip(rs, ref, strict=True))
        out["baseline_household_median"][name]["share_cv_below_10of10"] = below / len(rs) if rs else 0.0
    out["households_scored"] = min(single, households)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=120)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--single", type=int, default=30, help="households scored one by one for baselines")
    a = ap.parse_args()
    print(json.dumps(run(a.households, a.days, a.seed, a.single)))


if __name__ == "__main__":
    main()
