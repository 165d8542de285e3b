"""Weather covariates of a forecast: a location's air temperature and solar irradiance per time step.

A :class:`WeatherSeries` is what a weather service gives for one location: values per regular step (UTC epoch ms
step starts), observed for the past and forecast for the future. A forecaster that uses it reads the weather of
the points it forecasts (the *forecast* weather) and of the points it learns from (the observed weather).

Fields (:data:`FIELDS`; a series carries any subset, missing values are NaN):

* ``temp_c`` - air temperature, degC (drives heating and cooling load, lowers PV efficiency);
* ``ghi_w_m2`` - global horizontal irradiance, W/m2 (drives PV output);
* ``ghi_clear_w_m2`` - clear-sky GHI, W/m2: the irradiance without clouds, a deterministic function of the
  location and the sun's position (pvlib computes it), so it is known for any future time without a weather
  forecast.

The values of a point (a forecast step of ``point_ms``) are the mean of the steps that start inside it; a point
shorter than the weather's step takes the step that contains it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

FIELDS = ("temp_c", "ghi_w_m2", "ghi_clear_w_m2")
BOUNDS = {"temp_c": (-80.0, 70.0), "ghi_w_m2": (0.0, 1500.0), "ghi_clear_w_m2": (0.0, 1500.0)}


class WeatherSource(Protocol):
    """Where a forecaster reads weather: :class:`WeatherSeries` offline, the stage's weather view live."""

    def value(self, name: str, start_ms: int, length_ms: int) -> float: ...


@dataclass(frozen=True)
class WeatherSeries:
    """Weather of one location on a regular grid: step starts ``ts`` (UTC epoch ms, step ``step_ms``) and
    ``values[field]`` per step (units in the field names; NaN = unknown)."""

    ts: np.ndarray
    step_ms: int
    values: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        unknown = set(self.values) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown weather fields {sorted(unknown)}; known: {FIELDS}")
        if self.ts.size > 1 and np.any(np.diff(self.ts) != self.step_ms):
            raise ValueError(f"weather steps are not a regular grid of {self.step_ms} ms")
        for name, v in self.values.items():
            if v.shape != self.ts.shape:
                raise ValueError(f"weather field {name}: {v.size} values for {self.ts.size} steps")
            lo, hi = BOUNDS[name]
            bad = np.isfinite(v) & ((v < lo) | (v > hi))
            if bad.any():
                raise ValueError(f"weather field {name}: {int(bad.sum())} values outside [{lo}, {hi}]")

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields this series carries, in :data:`FIELDS` order."""
        return tuple(f for f in FIELDS if f in self.values)

    def only(self, fields: tuple[str, ...]) -> WeatherSeries:
        """The same series restricted to ``fields`` (e.g. clear-sky GHI alone, which needs no forecast)."""
        return WeatherSeries(self.ts, self.step_ms, {f: self.values[f] for f in fields})

    def value(self, name: str, start_ms: int, length_ms: int) -> float:
        """Mean of field ``name`` over the point ``[start_ms, start_ms + length_ms)`` (UTC epoch ms), as
        :meth:`on_points` for one point; NaN when unknown or when the series does not carry the field."""
        v = self.values.get(name)
        if v is None or not self.ts.size:
            return math.nan
        first = (start_ms - int(self.ts[0])) // self.step_ms
        total, n = 0.0, 0
        for i in range(max(first, 0), min(first + max(1, length_ms // self.step_ms), v.size)):
            x = float(v[i])
            if x == x:
                total, n = total + x, n + 1
        return total / n if n else math.nan

    def on_points(self, starts: np.ndarray, point_ms: int) -> dict[str, np.ndarray]:
        """Each field's mean over the points starting at ``starts`` (UTC epoch ms) of ``point_ms`` each; NaN where
        none of the point's steps is known."""
        per = max(1, point_ms // self.step_ms)
        first = (
            (np.asarray(starts, dtype=np.int64) - int(self.ts[0])) // self.step_ms if self.ts.size else starts
        )
        idx = first[..., None] + np.arange(per)
        ok = (idx >= 0) & (idx < self.ts.size)
        out = {}
        for name, v in self.values.items():
            x = np.full(idx.shape, np.nan)
            x[ok] = v[idx[ok]]
            n = np.isfinite(x).sum(axis=-1)
            out[name] = np.where(n > 0, np.nansum(x, axis=-1) / np.maximum(n, 1), np.nan)
        return out


@dataclass(frozen=True)
class FieldsOf:
    """A weather source restricted to ``fields`` (what one property's models read): the others are unknown."""

    source: WeatherSource
    fields: tuple[str, ...]

    def value(self, name: str, start_ms: int, length_ms: int) -> float:
        return self.source.value(name, start_ms, length_ms) if name in self.fields else math.nan
