"""Reference models of the harness (issue 17), each an :class:`~.protocol.OriginForecaster`.

* ``seasonal-naive-day`` / ``seasonal-naive-week``: the same point one day / one week earlier;
* ``persistence``: the last known point, for every lead;
* ``mstl-arima``: statsmodels MSTL (daily and weekly seasonality) on the last ``window_days``; the seasonal
  components are extended periodically and an ARIMA(2,0,1) with a constant models the rest. The decomposition and
  the ARIMA parameters are refitted every ``refit_days``; at every origin the fitted ARIMA is re-filtered over the
  last week of deseasonalised history (no refit) and forecasts from there;
* ``lightgbm``: :class:`~streams.analytics.gbm_direct.GbmDirect` (lags + calendar, L1 objective), retrained
  every ``retrain_days`` on the history before the origin.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from streams.analytics.evaluation.protocol import DAY_MS, Prediction
from streams.analytics.gbm_direct import GbmDirect
from streams.analytics.weather import WeatherSeries


def _lagged(history: np.ndarray, n: int, lag: int) -> np.ndarray:
    """Values ``lag`` points before each of the ``n`` targets after the history (NaN when not known yet)."""
    idx = history.size + np.arange(n) - lag
    out = np.full(n, np.nan)
    ok = (idx >= 0) & (idx < history.size)
    out[ok] = history[idx[ok]]
    return out


@dataclass
class SeasonalNaive:
    """The same point ``days`` days earlier."""

    days: int
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or {1: "seasonal-naive-day", 7: "seasonal-naive-week"}.get(
            self.days, f"seasonal-naive-{self.days}d"
        )

    def forecast(self, history: np.ndarray, history_ts: np.ndarray, target_ts: np.ndarray) -> Prediction:
        return Prediction(_lagged(history, target_ts.size, self.days * _per_day(history_ts)))


def _per_day(ts: np.ndarray) -> int:
    """Points per day of a regular grid of step starts (UTC epoch ms, at least two)."""
    return DAY_MS // int(ts[-1] - ts[-2])


@dataclass
class Persistence:
    """The last known point for every lead (NaN if it is missing)."""

    name: str = "persistence"

    def forecast(self, history: np.ndarray, history_ts: np.ndarray, target_ts: np.ndarray) -> Prediction:
        return Prediction(np.full(target_ts.size, history[-1] if history.size else np.nan))


@dataclass
class MstlArima:
    """MSTL (daily + weekly) + ARIMA(2,0,1) on the deseasonalised rest; see the module docstring."""

    window_days: int = 28
    refit_days: int = 7
    filter_days: int = 7
    order: tuple[int, int, int] = (2, 0, 1)
    name: str = "mstl-arima"
    _fit_len: int = field(default=-1, repr=False)
    _season: np.ndarray | None = field(
        default=None, repr=False
    )  # one week of daily+weekly seasonal, ends at _fit_len
    _arima: Any = field(default=None, repr=False)

    def _refit(self, history: np.ndarray, p: int) -> None:
        from statsmodels.tsa.arima.model import ARIMA
        from statsmodels.tsa.seasonal import MSTL

        w = pd.Series(history[-self.window_days * p :]).interpolate(limit_direction="both").to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = MSTL(w, periods=(p, 7 * p)).fit()
            seasonal = np.asarray(res.seasonal).sum(axis=1)
            self._season = seasonal[-7 * p :]
            self._arima = ARIMA(w - seasonal, order=self.order, trend="c").fit()
        self._fit_len = history.size

    def _seasonal_at(self, idx: np.ndarray, p: int) -> np.ndarray:
        """Seasonal component at absolute history indices, extended with period one week from the last fit."""
        return self._season[(idx - self._fit_len) % (7 * p)]

    def forecast(self, history: np.ndarray, history_ts: np.ndarray, target_ts: np.ndarray) -> Prediction:
        p = _per_day(history_ts)
        if history.size < 2 * 7 * p + p:
            return Prediction(np.full(target_ts.size, np.nan))
        if self._arima is None or history.size - self._fit_len >= self.refit_days * p:
            self._refit(history, p)
        lo = history.size - self.filter_days * p
        recent = history[lo:] - self._seasonal_at(np.arange(lo, history.size), p)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fc = np.asarray(self._arima.apply(recent).forecast(target_ts.size))
        return Prediction(fc + self._seasonal_at(np.arange(history.size, history.size + target_ts.size), p))


@dataclass
class LightGbmPeer:
    """:class:`GbmDirect` retrained every ``retrain_days`` on the history before the origin; with ``weather``
    it also reads the weather of the history and of the targets (not a peer then: see ``weather_models``)."""

    points: int
    retrain_days: int = 7
    rounds: int = 200
    name: str = "lightgbm"
    weather: WeatherSeries | None = field(default=None, repr=False)
    model: GbmDirect | None = field(default=None, repr=False)

    def forecast(self, history: np.ndarray, history_ts: np.ndarray, target_ts: np.ndarray) -> Prediction:
        point_ms = int(history_ts[-1] - history_ts[-2])
        if self.model is None:
            self.model = GbmDirect(point_ms, self.points, rounds=self.rounds, weather=self.weather)
        m = self.model
        if m.booster is None or history.size - m.fitted_len >= self.retrain_days * m.per_day:
            m.fit(history, int(history_ts[0]))
        return Prediction(m.predict(history, int(history_ts[0])))


def standard_peers(points: int) -> list[Any]:
    """The peers every horizon is scored against (fresh instances: models keep state between origins)."""
    return [
        SeasonalNaive(1),
        SeasonalNaive(7),
        Persistence(),
        MstlArima(),
        LightGbmPeer(points),
    ]
