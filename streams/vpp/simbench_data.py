"""Realistic prosumer load data from the simbench standard load profiles (shipped with the package).

simbench 1-complete_data-mixed-all-1-sw holds one year (2016, 366 days x 96 slots) of normalised active power for
households (H0-*), commercial (G0..G6-*) and agricultural (L0..L2-*) profile types. A synthetic prosumer takes one
type, a random 28-day window and +-10 % multiplicative noise per slot, scaled to a random annual consumption.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import numpy as np

DAY_MS = 86_400_000
YEAR_START_MS = int(datetime(2016, 1, 1, tzinfo=UTC).timestamp() * 1000)
CATEGORY = {"H": "household", "G": "commercial", "L": "agricultural"}


@dataclass(frozen=True)
class ProfileTypes:
    """Per simbench profile type (e.g. ``H0-A``) a (366, 96) array of relative power (dimensionless)."""

    days: dict[str, np.ndarray]

    def category(self, profile_type: str) -> str:
        return CATEGORY[profile_type[0]]


@cache
def load_profile_types() -> ProfileTypes:
    """Read the H0/G*/L* load profile types from the simbench package data (about 3 s, cached)."""
    import pandas as pd
    import simbench

    path = os.path.join(
        os.path.dirname(simbench.__file__), "networks", "1-complete_data-mixed-all-1-sw", "LoadProfile.csv"
    )
    columns = pd.read_csv(path, sep=";", nrows=0).columns
    wanted = [c for c in columns if c.endswith("_pload") and c[0] in CATEGORY and c[1].isdigit()]
    frame = pd.read_csv(path, sep=";", usecols=wanted)
    return ProfileTypes({c.removesuffix("_pload"): frame[c].to_numpy().reshape(-1, 96) for c in wanted})


@dataclass(frozen=True)
class SyntheticProsumer:
    """``energy_wh``: (days, 96) slot energies in Wh; ``first_day_ms``: UTC midnight of the first day."""

    prosumer_id: str
    profile_type: str
    category: str
    first_day_ms: int
    energy_wh: np.ndarray


def synthetic_prosumers(
    per_type: int = 8, days: int = 28, noise: float = 0.1, seed: int = 0, types: list[str] | None = None
) -> list[SyntheticProsumer]:
    """``per_type`` prosumers for each profile type, each with its own window, size and noise."""
    pt = load_profile_types()
    rng = np.random.default_rng(seed)
    out: list[SyntheticProsumer] = []
    for t in types or sorted(pt.days):
        year = pt.days[t]
        for i in range(per_type):
            start = int(rng.integers(0, len(year) - days))
            annual_kwh = rng.uniform(2_000, 20_000)
            rel = year[start : start + days] * rng.uniform(1 - noise, 1 + noise, (days, 96))
            wh = rel / year.sum() * annual_kwh * 1000.0
            out.append(SyntheticProsumer(f"{t}-{i}", t, pt.category(t), YEAR_START_MS + start * DAY_MS, wh))
    return out
