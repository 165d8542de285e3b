"""Probabilistic ensemble forecaster of one series (issue 17): online River members, a periodically retrained
LightGBM member, seasonal members; feature-dependent weights from recent errors; conformal P10/P50/P90.

One :class:`EnsembleForecaster` follows one regular series of energies per point (Wh per ``point_ms``, UTC epoch
ms point starts) and issues forecasts of ``points`` points. The same object serves a stream stage and the offline
harness (:mod:`streams.analytics.evaluation.ensemble_adapter` replays a series through exactly these calls):

* :meth:`observe` - a closed point: scores the pending forecasts of it (member weights, conformal residuals),
  then the online members learn it;
* :meth:`forecast` - point forecast and quantiles of the next ``points`` points from what has been observed;
* :meth:`retrain_due` / :meth:`retrain` - refit the LightGBM member on the kept history (every
  ``retrain_days``; off the hot path: a stage runs it in the background and swaps the model in).

Members (:data:`MEMBERS`): ``linear`` (the River Bayesian regression of
:class:`~streams.analytics.forecasting.EntityForecaster`), ``profile`` (its exponentially weighted day-type
profile: the seasonal profile), ``lightgbm`` (:class:`~streams.analytics.gbm_direct.GbmDirect`),
``seasonal-week`` (the point a week earlier) and ``persistence`` (the last point; only wins at short leads).
With ``weather`` (:class:`~streams.analytics.weather.WeatherSeries`: observed, and forecast for the points
ahead) the linear and LightGBM members also read the weather of the points they learn and forecast.
Weights: :class:`~streams.analytics.ensemble_weights.ErrorWeights`; quantiles:
:class:`~streams.analytics.conformal.ConformalQuantiles`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from streams.analytics.conformal import ConformalQuantiles
from streams.analytics.ensemble_weights import ErrorWeights, context
from streams.analytics.forecasting import EntityForecaster
from streams.analytics.gbm_direct import GbmDirect
from streams.analytics.weather import WeatherSeries

DAY_MS = 86_400_000
MEMBERS = ("linear", "profile", "lightgbm", "seasonal-week", "persistence")


@dataclass
class EnsembleForecast:
    """Forecast of ``points`` points from ``start`` (UTC epoch ms): ``point`` and ``quantiles[q]`` (Wh each)."""

    start: int
    point: np.ndarray
    quantiles: dict[float, np.ndarray]
    weights: np.ndarray  # [points, members]


@dataclass
class _Pending:
    issued_at: int
    preds: np.ndarray  # member forecasts
    point: float
    level: float


@dataclass
class EnsembleForecaster:
    point_ms: int
    points: int
    members: tuple[str, ...] = MEMBERS
    history_days: int = 365
    retrain_days: int = 7
    gbm_rounds: int = 200
    weight_power: float = 6.0
    median_point: bool = False
    # read by the linear and lightgbm members (the stage passes a WeatherSource: its members never include lightgbm)
    weather: WeatherSeries | None = field(default=None, repr=False)
    weights: ErrorWeights = field(init=False)
    conformal: ConformalQuantiles = field(default_factory=ConformalQuantiles)

    def __post_init__(self) -> None:
        if DAY_MS % self.point_ms or self.points * self.point_ms > DAY_MS:
            raise ValueError("points must divide a day and a forecast spans at most one day")
        unknown = set(self.members) - set(MEMBERS)
        if unknown:
            raise ValueError(f"unknown ensemble members {sorted(unknown)}; known: {MEMBERS}")
        self.weights = ErrorWeights(self.members, power=self.weight_power)
        self.per_day = DAY_MS // self.point_ms
        fields = self.weather.fields if self.weather is not None else ()
        self.linear = EntityForecaster(
            self.point_ms, model="linear", weather=self.weather, weather_fields=fields
        )
        self.profile = EntityForecaster(self.point_ms, model="profile")
        self.gbm = GbmDirect(
            self.point_ms,
            self.points,
            train_days=self.history_days,
            rounds=self.gbm_rounds,
            weather=self.weather,
        )
        self.hist: deque[float] = deque(maxlen=self.history_days * self.per_day + 8 * self.per_day)
        self.last_ts: int | None = None
        self.seen = 0  # points observed (gaps included); the kept history is capped, this is not
        self.fitted_at: int | None = None  # ``seen`` at the last (attempted) LightGBM fit
        self.pending: dict[int, _Pending] = {}
        self.nonnegative = True
        self.level = 0.0  # EW mean |value| per point

    # -- history -----------------------------------------------------------------------------------------------
    def _history(self) -> tuple[np.ndarray, int]:
        """(kept values, UTC epoch ms of the first)."""
        y = np.fromiter(self.hist, float, len(self.hist))
        return y, (self.last_ts or 0) - (y.size - 1) * self.point_ms

    def _lag(self, ts: int, lag_points: int) -> float:
        if self.last_ts is None:
            return math.nan
        back = (self.last_ts - ts) // self.point_ms + lag_points
        return self.hist[-1 - back] if 0 <= back < len(self.hist) else math.nan

    # -- online ------------------------------------------------------------------------------------------------
    def observe(self, ts: int, value: float) -> None:
        """Learn the closed point starting at ``ts`` (UTC epoch ms) with energy ``value`` (Wh; NaN = missing)."""
        if self.last_ts is not None:
            if ts <= self.last_ts:
                return  # replay: the online members do not unlearn
            gap = (ts - self.last_ts) // self.point_ms - 1
            self.hist.extend([math.nan] * min(gap, self.hist.maxlen))
            self.seen += gap
        p = self.pending.pop(ts, None)
        if p is not None and not math.isnan(value):
            self.weights.learn(context(ts, ts - p.issued_at), value, p.preds)
            if not math.isnan(p.point):
                self.conformal.learn(context(ts, ts - p.issued_at)[0], value, p.point, p.level)
        self.linear.observe(ts, value)
        self.profile.observe(ts, value)
        if not math.isnan(value):
            self.level = abs(value) if self.level == 0 else self.level + 0.01 * (abs(value) - self.level)
            self.nonnegative = self.nonnegative and value >= 0
        self.hist.append(value)
        self.seen += 1
        self.last_ts = ts
        for stale in [t for t in self.pending if t <= ts]:
            del self.pending[stale]

    def retrain_due(self) -> bool:
        """True once ``retrain_days`` of points arrived since the last (attempted) fit; the first attempt comes
        after ``min_train_days`` of the LightGBM member. Never, when ``lightgbm`` is not a member."""
        if "lightgbm" not in self.members:
            return False
        if self.fitted_at is None:
            return self.seen >= self.gbm.min_train_days * self.per_day
        return self.seen - self.fitted_at >= self.retrain_days * self.per_day

    def seasonal_naive(self, ts: int) -> float:
        """The point one day before ``ts`` (Wh; NaN when not kept): the MASE reference of the stage."""
        return self._lag(ts, self.per_day)

    def retrain(self) -> bool:
        """Refit the LightGBM member on the kept history; False if it is too short yet."""
        y, t0 = self._history()
        self.fitted_at = self.seen  # also after a too-short history: try again a retrain period later
        return self.gbm.fit(y, t0)

    def _member_forecasts(self, start: int) -> np.ndarray:
        """[points, members] forecasts of the points from ``start`` (NaN where a member has none)."""
        n = self.points
        cols = []
        for m in self.members:
            if m == "linear":
                cols.append(self.linear.predict_steps(start, n) if self.linear.n else [math.nan] * n)
            elif m == "profile":
                cols.append(self.profile.predict_steps(start, n) if self.profile.n else [math.nan] * n)
            elif m == "lightgbm":
                y, t0 = self._history()
                ok = self.last_ts is not None and start == self.last_ts + self.point_ms
                cols.append(self.gbm.predict(y, t0) if ok else [math.nan] * n)
            elif m == "seasonal-week":
                cols.append([self._lag(start + k * self.point_ms, 7 * self.per_day) for k in range(n)])
            else:  # persistence
                last = self.hist[-1] if self.hist else math.nan
                cols.append([last] * n)
        return np.asarray(cols, dtype=float).T

    def forecast(self, start: int) -> EnsembleForecast:
        """Forecast of the ``points`` points from ``start`` (normally the end of the last observed point)."""
        preds = self._member_forecasts(start)
        w = np.zeros_like(preds)
        point = np.full(self.points, np.nan)
        qs = {q: np.full(self.points, np.nan) for q in self.conformal.quantiles}
        offsets: dict[int, np.ndarray | None] = {}
        for k in range(self.points):
            ts = start + k * self.point_ms
            cell = context(ts, ts - start)
            avail = ~np.isnan(preds[k])
            if not avail.any():
                continue
            w[k] = self.weights.weights(cell, avail)
            combined = float(np.nansum(w[k] * preds[k]))
            if self.nonnegative:
                combined = max(combined, 0.0)
            if cell[0] not in offsets:
                offsets[cell[0]] = self.conformal.offsets(cell[0])
            for q, v in self.conformal.apply(
                offsets[cell[0]], combined, self.level, self.nonnegative
            ).items():
                qs[q][k] = v
            self.pending[ts] = _Pending(start, preds[k], combined, self.level)
            median = qs.get(0.5, point)[k]
            point[k] = median if self.median_point and not math.isnan(median) else combined
        return EnsembleForecast(start, point, qs, w)
