"""A direct multi-lead LightGBM forecaster (median / L1 objective) with lag and calendar features.

One model per series and horizon predicts every lead of a forecast at once: a row is (origin ``o``, lead ``h``)
and its target is the point ``j = o + h``. Features, all known at the origin (every lag of the target lies a whole
number of days before it and ``h`` is less than a day, so ``j - k * per_day < o``):

* calendar of the target: time-of-day slot, day of week; the lead ``h``;
* the recent level: the last point ``y[o-1]``, the mean of the last three, the last point minus the same point
  one day and one week earlier (how today runs against yesterday and last week);
* seasonal lags of the target: one, two and seven days earlier, and the mean of the same slot over the last week;
* with a :class:`~streams.analytics.weather.WeatherSeries`: each weather field at the target (the forecast
  weather; :func:`weather_features`).

Values are divided by the origin's level (mean absolute value of the last seven days), so trees learn shapes, not
levels that drift with seasons. Training uses every origin of the last ``train_days`` days (sampled down to
``max_rows`` rows); ``fit`` runs off the hot path (the harness calls it every ``retrain_days``, a stream stage
would call it from a background task) and ``predict`` only evaluates the trees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np

from streams.analytics.weather import WeatherSeries

DAY_MS = 86_400_000
FEATURES = ("lead", "slot", "dow", "last", "last3", "dev_d1", "dev_d7", "d1", "d2", "d7", "wk")
PARAMS = {
    "objective": "l1",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "num_threads": 1,
    "verbose": -1,
}


def _take(y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``y[idx]`` with NaN where ``idx`` is outside ``y``."""
    ok = (idx >= 0) & (idx < y.size)
    out = np.full(idx.shape, np.nan)
    out[ok] = y[idx[ok]]
    return out


def _level(y: np.ndarray, o: np.ndarray, width: int) -> np.ndarray:
    """Mean |y| over the ``width`` points before each origin (NaN ignored); 1.0 where nothing is known."""
    a = np.abs(np.nan_to_num(y, nan=0.0))
    n = (~np.isnan(y)).astype(float)
    cs = np.concatenate([[0.0], np.cumsum(a)])
    cn = np.concatenate([[0.0], np.cumsum(n)])
    lo = np.maximum(o - width, 0)
    s, c = cs[o] - cs[lo], cn[o] - cn[lo]
    lvl = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    return np.where(np.isnan(lvl) | (lvl <= 1e-9), 1.0, lvl)


def _nanmean(rows: list[np.ndarray]) -> np.ndarray:
    """Element-wise mean of equally long arrays ignoring NaN (NaN where all are NaN), without warnings."""
    x = np.stack(rows)
    n = (~np.isnan(x)).sum(axis=0)
    return np.where(n > 0, np.nansum(x, axis=0) / np.maximum(n, 1), np.nan)


def feature_names(weather: WeatherSeries | None) -> tuple[str, ...]:
    """The model's feature columns: :data:`FEATURES`, then one per weather field and, for irradiance, its value
    relative to the week before the origin."""
    if weather is None:
        return FEATURES
    extra = [f for f in weather.fields] + [f"{f}_rel" for f in weather.fields if f.startswith("ghi")]
    return FEATURES + tuple(extra)


def weather_features(
    weather: WeatherSeries, target_ms: np.ndarray, origin_ms: np.ndarray, point_ms: int
) -> list[np.ndarray]:
    """Columns of :func:`feature_names` beyond :data:`FEATURES`: each field at the target point, then each
    irradiance field divided by its mean over the week before the origin (so, like the energies, a shape)."""
    at = weather.on_points(target_ms, point_ms)
    cols = [at[f] for f in weather.fields]
    week = np.arange(-7 * (DAY_MS // point_ms), 0) * point_ms
    for f in weather.fields:
        if f.startswith("ghi"):
            uniq, inv = np.unique(origin_ms, return_inverse=True)
            back = weather.on_points(uniq[:, None] + week[None, :], point_ms)[f]
            n = np.isfinite(back).sum(axis=1)
            lvl = np.where(n > 0, np.nansum(back, axis=1) / np.maximum(n, 1), np.nan)[inv]
            cols.append(np.where(lvl > 1e-9, at[f] / np.where(lvl > 1e-9, lvl, 1.0), np.nan))
    return cols


def direct_features(
    y: np.ndarray,
    t0_ms: int,
    point_ms: int,
    origins: np.ndarray,
    points: int,
    weather: WeatherSeries | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features [n_origins * points, len(feature_names(weather))], target index j, level per row) for every
    (origin, lead).

    ``y`` is the known history (index 0 at ``t0_ms``, UTC epoch ms); values are divided by the level."""
    p = DAY_MS // point_ms
    if points > p:
        raise ValueError("a direct forecast spans at most one day")
    o = np.repeat(origins, points)
    h = np.tile(np.arange(points), origins.size)
    j = o + h
    lvl = _level(y, o, 7 * p)
    ms = t0_ms + j.astype(np.int64) * point_ms
    last = _take(y, o - 1)
    last3 = _nanmean([_take(y, o - k) for k in (1, 2, 3)])
    lags = {k: _take(y, j - k * p) for k in range(1, 8)}
    wk = _nanmean(list(lags.values()))
    cols = [
        h.astype(float),
        ((ms % DAY_MS) // point_ms).astype(float),
        ((ms // DAY_MS + 3) % 7).astype(float),  # 0 = Monday (1970-01-01 was a Thursday)
        last / lvl,
        last3 / lvl,
        (last - _take(y, o - 1 - p)) / lvl,
        (last - _take(y, o - 1 - 7 * p)) / lvl,
        lags[1] / lvl,
        lags[2] / lvl,
        lags[7] / lvl,
        wk / lvl,
    ]
    if weather is not None:
        cols += weather_features(weather, ms, t0_ms + o.astype(np.int64) * point_ms, point_ms)
    return np.stack(cols, axis=1), j, lvl


@dataclass
class GbmDirect:
    """Direct LightGBM forecaster of one series on a point grid of ``point_ms``; ``points`` leads per forecast;
    ``weather``: the location's weather (observed, and forecast for the points it forecasts), or None."""

    point_ms: int
    points: int
    train_days: int = 365
    max_rows: int = 40_000
    rounds: int = 200
    min_train_days: int = 14
    seed: int = 0
    weather: WeatherSeries | None = field(default=None, repr=False)
    booster: lgb.Booster | None = field(default=None, repr=False)
    fitted_len: int = 0  # history length at the last fit

    @property
    def per_day(self) -> int:
        return DAY_MS // self.point_ms

    def fit(self, y: np.ndarray, t0_ms: int) -> bool:
        """Train on the history ``y`` (index 0 at ``t0_ms``); False (model unchanged) if it is too short."""
        p = self.per_day
        first = max(7 * p + 1, y.size - self.train_days * p)
        org = np.arange(first, y.size - self.points + 1)
        if org.size < self.min_train_days * p // 2:
            return False
        rng = np.random.default_rng(self.seed + y.size)
        if org.size * self.points > self.max_rows:
            org = np.sort(rng.choice(org, self.max_rows // self.points, replace=False))
        x, j, lvl = direct_features(y, t0_ms, self.point_ms, org, self.points, self.weather)
        target = y[j] / lvl
        ok = ~np.isnan(target)
        names = list(feature_names(self.weather))
        data = lgb.Dataset(x[ok], target[ok], feature_name=names, free_raw_data=True)
        self.booster = lgb.train({**PARAMS, "seed": self.seed}, data, num_boost_round=self.rounds)
        self.fitted_len = y.size
        return True

    def predict(self, y: np.ndarray, t0_ms: int) -> np.ndarray:
        """The ``points`` forecasts (same unit as ``y``) after the end of ``y``; NaN before the first fit."""
        if self.booster is None:
            return np.full(self.points, np.nan)
        names = feature_names(self.weather)
        if self.booster.num_feature() != len(names):
            raise ValueError(
                f"the model was trained on {self.booster.num_feature()} features, the forecaster has {len(names)}: "
                "a model trained with weather needs the same weather fields to forecast"
            )
        x, _, lvl = direct_features(y, t0_ms, self.point_ms, np.array([y.size]), self.points, self.weather)
        return self.booster.predict(x, num_threads=1) * lvl
