"""Synthetic prosumer archetypes of the HL-UC03 LL-UC01 acceptance (15-minute slot energies, Wh).

residential: base load with an evening peak 19-21 h; pv: household load minus PV, net export 10-15 h;
commercial: flat 08-18 h, low otherwise, quiet weekends. Each slot gets +-``noise`` multiplicative noise.
"""

from __future__ import annotations

import numpy as np

HOURS = np.arange(96) / 4.0
ARCHETYPES = ("residential", "pv", "commercial")


def archetype_day(kind: str, weekend: bool) -> np.ndarray:
    """Noise-free mean power shape (W) of one day for the archetype."""
    if kind == "residential":
        w = 300 + 200 * ((HOURS >= 7) & (HOURS < 9)) + 1200 * ((HOURS >= 19) & (HOURS < 21))
        return w + (300 if weekend else 0) * ((HOURS >= 10) & (HOURS < 16))
    if kind == "pv":
        load = 350 + 600 * ((HOURS >= 18) & (HOURS < 22))
        pv = 2500 * np.clip(np.sin(np.pi * (HOURS - 7) / 11), 0, None) ** 1.5
        return load - pv
    if kind == "commercial":
        level = 300 if weekend else 3000
        return np.where((HOURS >= 8) & (HOURS < 18), level, 250.0)
    raise ValueError(f"unknown archetype {kind}")


def archetype_days(
    kind: str, first_day_weekday: int, days: int, rng: np.random.Generator, noise: float = 0.1
):
    """(days, 96) slot energies in Wh; ``first_day_weekday`` 0 = Monday."""
    out = np.empty((days, 96))
    for d in range(days):
        weekend = (first_day_weekday + d) % 7 >= 5
        out[d] = archetype_day(kind, weekend) * rng.uniform(1 - noise, 1 + noise, 96) / 4.0
    return out
