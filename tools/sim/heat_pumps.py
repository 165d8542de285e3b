"""A fleet of households with air-source heat pumps, driven by a real test reference year's temperatures.

The households of :func:`tools.analytics_eval.fleet` (simbench H0 profiles with household-level noise, 2016, 15 min)
each get a heat pump: the BDEW standard heat load profile of a single-family house (demandlib's SigLinDe, space
heating and hot water; building class 2, 5 or 8; 12 MWh of heat a year, log-normal +-30 %) for the hourly air
temperature of the DWD test reference year 2010 of region 4 (Potsdam, shipped with demandlib), divided by a
temperature-dependent COP, times hourly log-normal noise (sigma 0.25: the pump's cycling). Standard profiles, not
measurements: a fleet whose load follows a weather that evaluations can give to forecasters and baselines.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

TRY_REGION = 4  # DWD test reference year region 4: Nordostdeutsches Tiefland (Potsdam)


def try_weather(region: int = TRY_REGION) -> tuple[np.ndarray, np.ndarray]:
    """(air temperature degC, GHI W/m2) per UTC hour of the DWD test reference year 2010 of ``region`` (8760 hours
    from 1 January 00:00 UTC; the file's hours are CET hour-ending, GHI = direct + diffuse horizontal)."""
    path = resources.files("demandlib") / "vdi" / "resources_weather" / f"TRY2010_{region:02d}_Jahr.dat"
    lines = path.read_text(encoding="latin-1").splitlines()
    star = next(i for i, line in enumerate(lines) if line.startswith("***"))
    df = pd.read_csv(io.StringIO("\n".join([lines[star - 1], *lines[star + 1 :]])), sep=r"\s+")
    # CET hour-ending row k covers [k - 1, k) CET = [k - 2, k - 1) UTC: UTC hour j is row j + 1
    return np.roll(df["t"].to_numpy(dtype=float), -1), np.roll((df["B"] + df["D"]).to_numpy(dtype=float), -1)


def heat_pump_kwh(
    temp_c: np.ndarray, start: pd.Timestamp, annual_heat_kwh: float, building_class: int
) -> np.ndarray:
    """Electricity (kWh per hour) of an air-source heat pump heating a single-family house: BDEW heat load profile
    (demandlib SigLinDe, space heating and hot water) for hourly temperatures ``temp_c`` from ``start`` (UTC),
    divided by COP = 3 + 0.08 (T - 7 degC), within [2, 4.5]."""
    from demandlib import bdew

    idx = pd.date_range(start, periods=temp_c.size, freq="h", tz="UTC")
    heat = bdew.HeatBuilding(
        idx,
        temperature=pd.Series(temp_c, index=idx),
        shlp_type="EFH",
        building_class=building_class,
        wind_class=0,
        annual_heat_demand=annual_heat_kwh,
        ww_incl=True,
    ).get_bdew_profile()
    return heat.to_numpy(dtype=float) / np.clip(3.0 + 0.08 * (temp_c - 7.0), 2.0, 4.5)


@dataclass(frozen=True)
class HeatPumpFleet:
    """``ms`` quarter-hour starts (UTC epoch ms), ``kw`` [steps, households] total load (kW mean per quarter hour),
    ``events`` [days, households] DR event days, ``temp_c`` / ``ghi_w_m2`` per UTC hour of the fleet's year."""

    ms: np.ndarray
    kw: np.ndarray
    events: np.ndarray
    temp_c: np.ndarray
    ghi_w_m2: np.ndarray

    def daily_temp_c(self) -> np.ndarray:
        """Mean air temperature of each day (degC)."""
        return self.temp_c.reshape(-1, 24).mean(axis=1)


def heat_pump_fleet(n: int = 120, seed: int = 7) -> HeatPumpFleet:
    """The fleet of :func:`tools.analytics_eval.fleet` (``n`` households, 365 days, ``seed``) with heat pumps."""
    from tools.analytics_eval import fleet

    ms, kw, events = fleet(n, 365, seed)
    hours = ms.size // 4
    temp, ghi = (np.resize(v, hours) for v in try_weather())
    rng = np.random.default_rng(seed + 10)
    start = pd.Timestamp(int(ms[0]), unit="ms", tz="UTC")
    profiles = {c: heat_pump_kwh(temp, start, 1.0, c) for c in (2, 5, 8)}  # per kWh of heat a year
    total = kw.copy()
    for i in range(n):
        el = profiles[int(rng.choice(list(profiles)))] * rng.lognormal(np.log(12_000), 0.3)
        el = el * rng.lognormal(0.0, 0.25, hours)
        total[:, i] += np.repeat(el, 4)  # kWh in an hour = mean kW over each of its quarter hours
    return HeatPumpFleet(ms, total, events, temp, ghi)
