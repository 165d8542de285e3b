"""Rolling-origin evaluation protocol: horizons, resampling to a horizon's points, the replay without look-ahead.

A series is a regular grid of energies per step (Wh per step; UTC epoch ms step starts; NaN = missing). Each
horizon is scored at its own point length: the series is first summed into points of that length (a point with any
missing step is missing). At every origin ``t`` (an index into the point grid) a model sees **a copy of the
values before t** (``y[:t]``) and the calendar of the targets (``ts[t:t + points]``), nothing else, so it cannot
look ahead. Origins are non-overlapping blocks of the horizon's span (day-ahead at 00:00 UTC for the next 24 h,
intra-day every 4 h for 8 half hours, hour-ahead every hour), all within the last ``eval_days`` of the series;
the data before them is the warm-up/training history. Every model is scored on the same points: those where the
actual and every model's point forecast are known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

DAY_MS = 86_400_000
QUANTILES = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class EvalHorizon:
    """A forecast horizon: ``points`` values of ``point_minutes`` each, issued every ``points`` points."""

    name: str
    point_minutes: int
    points: int

    @property
    def point_ms(self) -> int:
        return self.point_minutes * 60_000

    @property
    def per_day(self) -> int:
        """Points per day (the daily seasonal period)."""
        return DAY_MS // self.point_ms


HORIZONS: dict[str, EvalHorizon] = {
    "hour-ahead": EvalHorizon("hour-ahead", 60, 1),
    "intra-day": EvalHorizon("intra-day", 30, 8),
    "day-ahead": EvalHorizon("day-ahead", 60, 24),
}


@dataclass(frozen=True)
class PointSeries:
    """A series on a horizon's point grid: starts ``ts`` (UTC epoch ms) and energies ``y`` (Wh per point)."""

    ts: np.ndarray
    y: np.ndarray
    point_ms: int

    @property
    def per_day(self) -> int:
        return DAY_MS // self.point_ms


@dataclass(frozen=True)
class Prediction:
    """A model's forecast of the ``points`` targets after an origin: point values and optional quantiles (Wh)."""

    point: np.ndarray
    quantiles: dict[float, np.ndarray] | None = None


class OriginForecaster(Protocol):
    """A model under evaluation. ``forecast`` is called at increasing origins; ``history`` is ``y[:t]`` (a copy),
    ``history_ts`` its step starts and ``target_ts`` the starts of the points to forecast."""

    name: str

    def forecast(self, history: np.ndarray, history_ts: np.ndarray, target_ts: np.ndarray) -> Prediction: ...


def to_points(ts: np.ndarray, values: np.ndarray, step_ms: int, point_ms: int) -> PointSeries:
    """Sum a regular series of step energies into points of ``point_ms`` aligned to UTC multiples of it.

    Partial points at both ends are dropped; a point with a missing (NaN) step is NaN."""
    if point_ms % step_ms:
        raise ValueError(f"point length {point_ms} ms is not a multiple of the step {step_ms} ms")
    per = point_ms // step_ms
    first = int(np.argmax((ts % point_ms) == 0)) if ts.size else 0
    if ts.size == 0 or ts[first] % point_ms:
        raise ValueError("series has no step aligned to a point start")
    n = (ts.size - first) // per
    v = np.asarray(values[first : first + n * per], dtype=float).reshape(n, per).sum(axis=1)  # NaN propagates
    return PointSeries(ts[first : first + n * per : per].astype(np.int64), v, point_ms)


def origins(series: PointSeries, horizon: EvalHorizon, eval_days: int) -> np.ndarray:
    """Origin indices: block starts aligned to the horizon's span, whose whole block lies in the last
    ``eval_days`` of the series."""
    span_ms = horizon.points * series.point_ms
    first_ts = series.ts[-1] + series.point_ms - eval_days * DAY_MS
    idx = np.flatnonzero((series.ts % span_ms == 0) & (series.ts >= first_ts))
    return idx[idx + horizon.points <= series.y.size]


@dataclass
class Replay:
    """Forecasts of every model at every origin, aligned: ``actual[o, k]`` is the target of lead ``k`` of origin
    ``o`` (Wh), ``point[model][o, k]`` its forecast, ``quantiles[model][q][o, k]`` where a model gives them."""

    horizon: EvalHorizon
    target_ts: np.ndarray
    actual: np.ndarray
    point: dict[str, np.ndarray] = field(default_factory=dict)
    quantiles: dict[str, dict[float, np.ndarray]] = field(default_factory=dict)

    def common_mask(self) -> np.ndarray:
        """Points scored for every model: actual and all point forecasts known."""
        ok = ~np.isnan(self.actual)
        for p in self.point.values():
            ok &= ~np.isnan(p)
        return ok


def replay(
    series: PointSeries, horizon: EvalHorizon, models: list[OriginForecaster], eval_days: int
) -> Replay:
    """Run every model at every origin (in time order) on a copy of the history before it."""
    org = origins(series, horizon, eval_days)
    if org.size == 0:
        raise ValueError(f"no {horizon.name} origin in the last {eval_days} days of the series")
    leads = np.arange(horizon.points)
    grid = org[:, None] + leads[None, :]
    out = Replay(horizon, series.ts[grid], series.y[grid])
    for m in models:
        pts = np.full(grid.shape, np.nan)
        qs: dict[float, np.ndarray] = {}
        for i, t in enumerate(org.tolist()):
            pred = m.forecast(series.y[:t].copy(), series.ts[:t].copy(), series.ts[t : t + horizon.points])
            pts[i] = pred.point
            for q, v in (pred.quantiles or {}).items():
                qs.setdefault(q, np.full(grid.shape, np.nan))[i] = v
        out.point[m.name] = pts
        if qs:
            out.quantiles[m.name] = qs
    return out
