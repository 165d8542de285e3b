"""The forecast evaluation sets that ship with installed packages (no network).

* ``simbench-household-0``, ``simbench-household-1``: two households of the synthetic fleet of
  :mod:`tools.analytics_eval` (simbench H0 profiles with household-level noise, seed 7, 365 days of 2016);
* ``simbench-portfolio``: the sum of that fleet's 120 households;
* ``pv-nrel-system50``: measured AC power of NREL PV system 50 (pvanalytics data, 15 min, 2011-04 to 2013-09;
  the last months of the file are left out so the evaluation window is late summer, not December);
* ``pv-nrel-serf-east``: measured AC power of the NREL SERF East PV system (pvanalytics, 15 min, 2016-07 to
  2016-10);
* ``heatpump-household-0``, ``heatpump-household-1``, ``heatpump-portfolio``: the same households with an
  air-source heat pump each (:func:`tools.sim.heat_pumps.heat_pump_fleet`): BDEW standard heat load profiles (demandlib, single-family
  houses) driven by the temperature of the DWD test reference year 2010 of region 4 (Potsdam; demandlib ships it),
  divided by a temperature-dependent COP. Standard profiles, not measurements: the one set whose load follows a
  weather the harness can give to the models.

The PV sets carry their site's measured weather (NSRDB PSM3), the heat-pump sets the TRY's (temperature and GHI).

Every set is a regular series of energies per 15-minute step in Wh (UTC epoch ms step starts; NaN = missing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from streams.analytics.evaluate import regularise
from streams.analytics.weather import WeatherSeries

STEP_MS = 900_000


@dataclass(frozen=True)
class EvalSet:
    name: str
    kind: str  # household | portfolio | pv
    ts: np.ndarray
    wh: np.ndarray
    weather: WeatherSeries | None = None  # the site's measured weather, where the data ships with it


def _fleet_sets() -> list[EvalSet]:
    from tools.analytics_eval import fleet

    ms, kw, _ = fleet(120, 365, 7)
    return [
        EvalSet("simbench-household-0", "household", ms, kw[:, 0] * 250.0),
        EvalSet("simbench-household-1", "household", ms, kw[:, 1] * 250.0),
        EvalSet("simbench-portfolio", "portfolio", ms, kw.sum(axis=1) * 250.0),
    ]


def _read(file: str, time_column: str) -> tuple[pd.DataFrame, np.ndarray]:
    """A pvanalytics data file and its timestamps (UTC epoch ms)."""
    path = resources.files("pvanalytics") / "data" / file
    df = pd.read_parquet(path) if file.endswith(".parquet") else pd.read_csv(path)
    t = pd.to_datetime(df[time_column], utc=True)
    return df, ((t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.int64)


def psm3_weather(file: str, time_column: str) -> WeatherSeries:
    """The NSRDB PSM3 weather that pvanalytics ships for a PV system (satellite-derived, per 15 or 30 min):
    air temperature, GHI and clear-sky GHI, on a regular grid of the file's step."""
    df, ms = _read(file, time_column)
    step = int(np.median(np.diff(ms)))
    grid = np.arange(ms[0] - ms[0] % step, ms[-1] + 1, step, dtype=np.int64)
    pos = np.searchsorted(grid, ms)
    values = {}
    for field, col in (("temp_c", "temp_air"), ("ghi_w_m2", "ghi"), ("ghi_clear_w_m2", "ghi_clear")):
        v = np.full(grid.size, np.nan)
        v[pos] = df[col].to_numpy(dtype=float)
        values[field] = v
    return WeatherSeries(grid, step, values)


def _pv(name: str, file: str, column: str, end: str | None, weather: tuple[str, str]) -> EvalSet:
    df, ms = _read(file, "measured_on")
    keep = ms < pd.Timestamp(end, tz="UTC").value // 1_000_000 if end else np.ones(ms.size, dtype=bool)
    w = df.loc[keep, column].to_numpy(dtype=float).clip(min=0.0)  # inverter night draw is not production
    s = regularise(ms[keep], w * 0.25)  # W mean over 15 min -> Wh
    return EvalSet(name, "pv", s.ts, s.values, psm3_weather(*weather))


def _heat_pump_sets() -> list[EvalSet]:
    from tools.sim.heat_pumps import heat_pump_fleet

    f = heat_pump_fleet()
    wh = f.kw * 250.0
    weather = WeatherSeries(
        f.ms[::4].astype(np.int64), 3_600_000, {"temp_c": f.temp_c, "ghi_w_m2": f.ghi_w_m2}
    )
    return [
        EvalSet("heatpump-household-0", "household", f.ms, wh[:, 0], weather),
        EvalSet("heatpump-household-1", "household", f.ms, wh[:, 1], weather),
        EvalSet("heatpump-portfolio", "portfolio", f.ms, wh.sum(axis=1), weather),
    ]


LOADERS: dict[str, Callable[[], list[EvalSet]]] = {
    "simbench": _fleet_sets,
    "heatpump": _heat_pump_sets,
    "pv-nrel-system50": lambda: [
        _pv(
            "pv-nrel-system50",
            "system_50_ac_power_2_full_DST.parquet",
            "ac_power_2",
            "2013-10-01",
            ("system_50_ac_power_2_full_DST_psm3.parquet", "index"),
        )
    ],
    "pv-nrel-serf-east": lambda: [
        _pv(
            "pv-nrel-serf-east",
            "serf_east_15min_ac_power.csv",
            "ac_power",
            None,
            ("serf_east_psm3_data.csv", "measured_on"),
        )
    ],
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
