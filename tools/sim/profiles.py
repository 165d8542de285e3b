"""Realistic household load and PV profiles for the simulators: SimBench 15-minute profiles (year 2016,
35,136 steps, per-unit of peak) interpolated to any instant with multiplicative noise.

The real clock is mapped onto the same instant of the profile year, so a simulator started at 13:00 in June
produces midday June values. The parsed columns are cached as ``<data dir>/sim/simbench_profiles.npz``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

STEP_MS = 15 * 60 * 1000
YEAR_START_MS = 1451606400000  # 2016-01-01T00:00:00Z, start of the SimBench profile year
SIMBENCH_SET = "1-complete_data-mixed-all-0-sw"
LOAD_COLUMNS = ["H0-A_pload", "H0-B_pload", "H0-C_pload", "H0-G_pload", "H0-H_pload", "H0-L_pload"]
PV_COLUMNS = [f"PV{i}" for i in range(1, 9)]


@dataclass(frozen=True)
class Profiles:
    """``load[:, k]`` and ``pv[:, k]``: per-unit 15-minute series (rows = steps since 2016-01-01 UTC)."""

    load: np.ndarray
    pv: np.ndarray

    @property
    def steps(self) -> int:
        return self.load.shape[0]

    def _at(self, series: np.ndarray, col: int, t_ms: int) -> float:
        pos = ((t_ms - YEAR_START_MS) / STEP_MS) % self.steps
        i = int(pos)
        frac = pos - i
        a, b = series[i, col], series[(i + 1) % self.steps, col]
        return float(a + (b - a) * frac)

    def load_pu(self, col: int, t_ms: int) -> float:
        return self._at(self.load, col % self.load.shape[1], t_ms)

    def pv_pu(self, col: int, t_ms: int) -> float:
        return self._at(self.pv, col % self.pv.shape[1], t_ms)


def _cache_path() -> Path:
    base = Path(os.environ.get("EDREAM_DATA_DIR", Path(__file__).resolve().parents[2] / "var"))
    return base / "sim" / "simbench_profiles.npz"


def _synthetic() -> Profiles:
    """Fallback when simbench is not installed: a daily double-peak load and a clear-sky PV bell."""
    t = np.arange(35136) * 0.25 % 24
    load = 0.25 + 0.2 * np.exp(-((t - 8) ** 2) / 4) + 0.45 * np.exp(-((t - 19) ** 2) / 5)
    pv = np.clip(np.sin((t - 6) / 12 * np.pi), 0, None) * 0.7
    return Profiles(np.stack([load] * 3, axis=1), np.stack([pv] * 2, axis=1))


@cache
def load_profiles() -> Profiles:
    path = _cache_path()
    if path.is_file():
        with np.load(path) as z:
            return Profiles(z["load"], z["pv"])
    try:
        import pandas as pd
        import simbench
    except ImportError:
        return _synthetic()
    d = Path(simbench.__file__).parent / "networks" / SIMBENCH_SET
    load = pd.read_csv(d / "LoadProfile.csv", sep=";", usecols=LOAD_COLUMNS)[LOAD_COLUMNS].to_numpy(
        np.float32
    )
    pv = pd.read_csv(d / "RESProfile.csv", sep=";", usecols=PV_COLUMNS)[PV_COLUMNS].to_numpy(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, load=load, pv=pv)
    return Profiles(load, pv)


@dataclass
class Household:
    """One simulated prosumer: load peak and PV peak in W, noise as a relative standard deviation.

    :meth:`step` advances to ``t_ms`` and returns instantaneous consumption/production (W); the energy
    counters (Wh) integrate the net power since the previous step.
    """

    index: int
    load_peak_w: float
    pv_peak_w: float
    noise: float = 0.03
    e_import_wh: float = 0.0
    e_export_wh: float = 0.0
    last_ms: int | None = None
    rng: np.random.Generator | None = None

    @classmethod
    def make(cls, index: int, seed: int = 0) -> Household:
        rng = np.random.default_rng(seed * 100_003 + index)
        return cls(
            index=index,
            load_peak_w=float(rng.uniform(3000, 7000)),
            pv_peak_w=float(rng.choice([0.0, 3000.0, 4500.0, 6000.0])),
            e_import_wh=float(rng.uniform(1e6, 9e6)),
            e_export_wh=float(rng.uniform(0, 3e6)),
            rng=rng,
        )

    def step(self, t_ms: int) -> tuple[float, float]:
        prof = load_profiles()
        assert self.rng is not None
        load = max(
            0.0, prof.load_pu(self.index, t_ms) * self.load_peak_w * (1 + self.rng.normal(0, self.noise))
        )
        pv = max(0.0, prof.pv_pu(self.index, t_ms) * self.pv_peak_w * (1 + self.rng.normal(0, self.noise)))
        if self.last_ms is not None and t_ms > self.last_ms:
            net_wh = (load - pv) * (t_ms - self.last_ms) / 3_600_000
            if net_wh >= 0:
                self.e_import_wh += net_wh
            else:
                self.e_export_wh -= net_wh
        self.last_ms = t_ms
        return load, pv
