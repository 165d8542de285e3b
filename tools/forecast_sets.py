"""The forecast evaluation sets that ship with installed packages (no network).

* ``simbench-household-0``, ``simbench-household-1``: two households of the synthetic fleet of
  :mod:`tools.analytics_eval` (simbench H0 profiles with household-level noise, seed 7, 365 days of 2016);
* ``simbench-portfolio``: the sum of that fleet's 120 households;
* ``pv-nrel-system50``: measured AC power of NREL PV system 50 (pvanalytics data, 15 min, 2011-04 to 2013-09;
  the last months of the file are left out so the evaluation window is late summer, not December);
* ``pv-nrel-serf-east``: measured AC power of the NREL SERF East PV system (pvanalytics, 15 min, 2016-07 to
  2016-10).

Every set is a regular series of energies per 15-minute step in Wh (UTC epoch ms step starts; NaN = missing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from streams.analytics.evaluate import regularise

STEP_MS = 900_000


@dataclass(frozen=True)
class EvalSet:
    name: str
    kind: str  # household | portfolio | pv
    ts: np.ndarray
    wh: np.ndarray


def _fleet_sets() -> list[EvalSet]:
    from tools.analytics_eval import fleet

    ms, kw, _ = fleet(120, 365, 7)
    return [
        EvalSet("simbench-household-0", "household", ms, kw[:, 0] * 250.0),
        EvalSet("simbench-household-1", "household", ms, kw[:, 1] * 250.0),
        EvalSet("simbench-portfolio", "portfolio", ms, kw.sum(axis=1) * 250.0),
    ]


def _pv(name: str, file: str, column: str, end: str | None) -> EvalSet:
    path = resources.files("pvanalytics") / "data" / file
    df = pd.read_parquet(path) if file.endswith(".parquet") else pd.read_csv(path)
    t = pd.to_datetime(df["measured_on"], utc=True)
    keep = (t < pd.Timestamp(end, tz="UTC")) if end else np.ones(len(t), dtype=bool)
    ms = ((t[keep] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.int64)
    w = df.loc[keep, column].to_numpy(dtype=float).clip(min=0.0)  # inverter night draw is not production
    s = regularise(ms, w * 0.25)  # W mean over 15 min -> Wh
    return EvalSet(name, "pv", s.ts, s.values)


LOADERS: dict[str, Callable[[], list[EvalSet]]] = {
    "simbench": _fleet_sets,
    "pv-nrel-system50": lambda: [
        _pv("pv-nrel-system50", "system_50_ac_power_2_full_DST.parquet", "ac_power_2", "2013-10-01")
    ],
    "pv-nrel-serf-east": lambda: [_pv("pv-nrel-serf-east", "serf_east_15min_ac_power.csv", "ac_power", None)],
}


def load_sets(names: list[str] | None = None) -> list[EvalSet]:
    """The evaluation sets (all, or those whose name starts with one of ``names``)."""
    wanted = [
        load
        for key, load in LOADERS.items()
        if not names or any(key.startswith(n) or n.startswith(key) for n in names)
    ]
    out = [s for load in wanted for s in load()]
    return [s for s in out if not names or any(s.name.startswith(n) for n in names)]
