"""A weather-aware regression baseline (issue 17): how much a customer would have used on a day of that weather.

For a load that follows the weather (electric heating, heat pumps, air conditioning) the X-of-Y day-matching
baselines are biased whenever the event day is colder or warmer than the days they average. This baseline
separates level and shape:

* **level**: the day's mean load, regressed over the look-back days (the last ``y`` similar, non-event, complete
  days, as :func:`~streams.analytics.baselines.candidate_days` picks them) on heating and cooling degrees of the
  day's mean temperature, ``level = a + b * HDD + c * CDD`` (HDD = max(0, ``heating_base_c`` - T), CDD = max(0,
  T - ``cooling_base_c``), degC); a term whose degrees never occur on those days is left out, and with fewer than
  ``min_days`` days the baseline is none;
* **shape**: the mean over those days of each day's quarter hours divided by its own level.

The baseline of day ``d`` is ``shape x level(T_d)``. In DR settlement the event day's temperature is measured by
the time the baseline is computed, so ``temp_c`` of day ``d`` is the observed one (no weather forecast needed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from streams.analytics.baselines import BaselineConfig, DayBaseline, candidate_days

WEATHER_ROW = "weather regression (HDD/CDD of the day, 20 days)"  # its name in the evaluation tables


@dataclass(frozen=True)
class WeatherRegression:
    """Look-back ``y`` days within ``max_lookback_days``; at least ``min_days`` to fit; degree-day bases in degC."""

    y: int = 20
    max_lookback_days: int = 45
    min_days: int = 8
    heating_base_c: float = 15.0
    cooling_base_c: float = 22.0

    def __post_init__(self) -> None:
        if not 3 <= self.min_days <= self.y <= self.max_lookback_days:
            raise ValueError("need 3 <= min_days <= y <= max_lookback_days")

    @property
    def lookback(self) -> BaselineConfig:
        return BaselineConfig("AVERAGE_Y", x=self.y, y=self.y, max_lookback_days=self.max_lookback_days)

    def degrees(self, temp_c: np.ndarray) -> np.ndarray:
        """[n, 2] heating and cooling degrees of daily mean temperatures ``temp_c`` (degC)."""
        t = np.asarray(temp_c, dtype=float)
        return np.stack(
            [np.maximum(self.heating_base_c - t, 0.0), np.maximum(t - self.cooling_base_c, 0.0)], 1
        )


def weather_baseline(
    load_kw: np.ndarray,
    temp_c: np.ndarray,
    d: int,
    kind: np.ndarray,
    excluded: np.ndarray,
    cfg: WeatherRegression = WeatherRegression(),
) -> DayBaseline | None:
    """Baseline (kW per quarter hour) of day ``d`` from ``load_kw`` [days, 96] and the days' mean air temperature
    ``temp_c`` [days] (degC; NaN unknown); None without enough look-back days or without day ``d``'s temperature.
    ``adjustment_kw`` is the weather's part: the regression level minus the look-back days' mean level."""
    if not np.isfinite(temp_c[d]):
        return None
    days = [j for j in candidate_days(load_kw, d, kind, excluded, cfg.lookback) if np.isfinite(temp_c[j])]
    if len(days) < cfg.min_days:
        return None
    rows = load_kw[days]
    level = np.nanmean(rows, axis=1)
    ok = level > 0
    if ok.sum() < cfg.min_days:
        return None
    rows, level, chosen = rows[ok], level[ok], [j for j, k in zip(days, ok, strict=True) if k]
    shape = np.nanmean(rows / level[:, None], axis=0)
    x = cfg.degrees(temp_c[chosen])
    used = x.max(axis=0) > 0  # a degree-day term none of the days had cannot be fitted
    design = np.column_stack([np.ones(len(chosen)), x[:, used]])
    coef, *_ = np.linalg.lstsq(design, level, rcond=None)
    target = np.concatenate([[1.0], cfg.degrees(temp_c[d : d + 1])[0, used]])
    predicted = max(float(target @ coef), 0.0)
    return DayBaseline(shape * predicted, shape * (predicted - float(level.mean())), chosen)


def event_cbl(
    load_kw: np.ndarray,
    temp_c: np.ndarray,
    kind: np.ndarray,
    excluded: np.ndarray,
    event_slots: slice,
    cfg: WeatherRegression = WeatherRegression(),
) -> Callable[[int], np.ndarray | None]:
    """The CBL of the ``event_slots`` of day ``d`` as a function of ``d`` (for
    :func:`~streams.analytics.baseline_events.evaluate_cbl`)."""

    def cbl(d: int) -> np.ndarray | None:
        bl = weather_baseline(load_kw, temp_c, d, kind, excluded, cfg)
        return None if bl is None else bl.kw[event_slots]

    return cbl
