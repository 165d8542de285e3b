"""Realistic synthetic PV production with a known degradation rate (for tests, benchmarks and demos).

pvlib clear-sky irradiance at the site, attenuated by a Markov weather process (clear / broken / overcast days with
intraday variability), seasonal + diurnal air temperature, PVWatts DC power, then: injected degradation
``(1 + rd)^(years)``, inverter clipping at the AC limit, 1 % measurement noise, random outage days and one
two-week outage. Returns the "measured" plane-of-array irradiance too (with 2 % sensor noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streams.vpp.pv_model import PvSystem, clearsky_poa, dc_power_w

SLOT_MS = 15 * 60 * 1000
DAY_MS = 86_400_000


@dataclass(frozen=True)
class SyntheticPv:
    """Slot-start times (UTC ms), measured power (W, NaN = missing), POA irradiance (W/m2), air temp (degC)."""

    system: PvSystem
    times_ms: np.ndarray
    power_w: np.ndarray
    poa_wm2: np.ndarray
    temp_air_c: np.ndarray
    rd_per_year: float


def _weather_states(days: int, rng: np.random.Generator) -> np.ndarray:
    """Daily clearness level in (0, 1]: 0 = overcast ... 1 = clear, with day-to-day persistence."""
    trans = np.array([[0.6, 0.25, 0.15], [0.3, 0.45, 0.25], [0.2, 0.3, 0.5]])  # clear, broken, overcast
    state, out = 0, np.empty(days)
    for d in range(days):
        state = rng.choice(3, p=trans[state])
        out[d] = (1.0, rng.uniform(0.5, 0.9), rng.uniform(0.1, 0.4))[state]
    return out


def simulate_pv(
    system: PvSystem,
    start_ms: int,
    years: float = 3.0,
    rd_per_year: float = -0.008,
    seed: int = 0,
    outage_day_share: float = 0.02,
) -> SyntheticPv:
    rng = np.random.default_rng(seed)
    days = int(round(years * 365))
    times = start_ms + np.arange(days * 96, dtype=np.int64) * SLOT_MS
    cs, poa_cs = clearsky_poa(system, times)
    level = np.repeat(_weather_states(days, rng), 96)
    clear = level >= 1.0
    # intraday cloud variability on non-clear days: smoothed noise around the daily level
    wiggle = np.convolve(rng.normal(0, 0.25, len(times)), np.ones(4) / 4, mode="same")
    k = np.where(clear, 1.0, np.clip(level + wiggle, 0.05, 1.0))
    poa_direct = poa_cs["poa_direct"].to_numpy() * np.where(clear, 1.0, np.clip((k - 0.3) / 0.7, 0, 1) ** 1.5)
    poa_diffuse = poa_cs["poa_diffuse"].to_numpy() * np.where(clear, 1.0, 0.6 + 0.8 * k * (1 - k) + 0.4 * k)
    poa = poa_direct + poa_diffuse
    t_days = (times - start_ms) / DAY_MS
    hour = (times % DAY_MS) / 3_600_000
    temp = 10 - 10 * np.cos(2 * np.pi * (t_days - 15) / 365.25) + 5 * np.sin(2 * np.pi * (hour - 9) / 24)
    power = dc_power_w(system, poa, temp) * (1.0 + rd_per_year) ** (t_days / 365.25)
    if system.ac_limit_w is not None:
        power = np.minimum(power, system.ac_limit_w)
    power = power * rng.normal(1.0, 0.01, len(power))
    outage = np.repeat(rng.random(days) < outage_day_share, 96)
    long_start = int(rng.integers(0, days - 14)) * 96
    outage[long_start : long_start + 14 * 96] = True
    power = np.where(outage, 0.0, np.clip(power, 0.0, None))
    missing = rng.random(len(power)) < 0.005
    power[missing] = np.nan
    poa_measured = np.clip(poa * rng.normal(1.0, 0.02, len(poa)), 0, None)
    return SyntheticPv(system, times, power, poa_measured, temp, rd_per_year)
