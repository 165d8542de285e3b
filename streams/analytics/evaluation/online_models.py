"""The online forecasters replayed at rolling origins exactly as a stream stage runs them.

Each adapter feeds the points before the origin one by one (``observe``), as closed intervals arrive in a stage,
and issues a forecast at every block start of the horizon (shadow forecasts before the evaluation window too, so
online weights and residuals are learnt as they would be live). Models keep their state between origins.

* :class:`RiverModel` - :class:`~streams.analytics.forecasting.EntityForecaster` (``linear``, ``profile``);
* :class:`Ensemble` - :class:`~streams.analytics.ensemble.EnsembleForecaster`; its LightGBM member is
  retrained whenever it is due, before the forecast, on the history seen so far.

:func:`weather_models` adds the models that read a site's weather (:class:`~streams.analytics.weather.
WeatherSeries`): the weather of the targets stands for the weather forecast a stage would receive.

``shadow_days`` bounds the replay with forecasts before the first origin (older points are only observed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streams.analytics.ensemble import EnsembleForecaster
from streams.analytics.evaluation.peers import LightGbmPeer
from streams.analytics.evaluation.protocol import DAY_MS, EvalHorizon, Prediction
from streams.analytics.forecasting import EntityForecaster
from streams.analytics.weather import WeatherSeries


@dataclass
class _Replayer:
    horizon: EvalHorizon
    shadow_days: int = 28
    seen: int = 0

    def _catch_up(self, history: np.ndarray, history_ts: np.ndarray) -> None:
        span = self.horizon.points * self.horizon.point_ms
        shadow_from = int(history_ts[-1]) + self.horizon.point_ms - self.shadow_days * DAY_MS
        for i in range(self.seen, history.size):
            t = int(history_ts[i])
            if t % span == 0 and t >= shadow_from and i > 0:
                self._issue(t)
            self._observe(t, float(history[i]))
        self.seen = history.size

    def forecast(self, history: np.ndarray, history_ts: np.ndarray, target_ts: np.ndarray) -> Prediction:
        self._catch_up(history, history_ts)
        return self._issue(int(target_ts[0]))

    def _observe(self, ts: int, value: float) -> None:
        raise NotImplementedError

    def _issue(self, start: int) -> Prediction:
        raise NotImplementedError


@dataclass
class RiverModel(_Replayer):
    model: str = "linear"
    weather: WeatherSeries | None = field(default=None, repr=False)  # its fields become features
    fc: EntityForecaster | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"river-{self.model}" + ("-weather" if self.weather is not None else "")

    def _observe(self, ts: int, value: float) -> None:
        if self.fc is None:
            w = self.weather
            fields = w.fields if w is not None else ()
            self.fc = EntityForecaster(
                self.horizon.point_ms, model=self.model, weather=w, weather_fields=fields
            )
        self.fc.observe(ts, value)

    def _issue(self, start: int) -> Prediction:
        if self.fc is None:
            return Prediction(np.full(self.horizon.points, np.nan))
        return Prediction(np.asarray(self.fc.predict_steps(start, self.horizon.points)))


@dataclass
class Ensemble(_Replayer):
    name: str = "ensemble"
    options: dict = field(default_factory=dict)  # EnsembleForecaster keyword arguments
    model: EnsembleForecaster | None = field(default=None, repr=False)

    def _observe(self, ts: int, value: float) -> None:
        if self.model is None:
            self.model = EnsembleForecaster(self.horizon.point_ms, self.horizon.points, **self.options)
        self.model.observe(ts, value)

    def _issue(self, start: int) -> Prediction:
        m = self.model
        if m is None:
            return Prediction(np.full(self.horizon.points, np.nan))
        if m.retrain_due():
            m.retrain()
        f = m.forecast(start)
        return Prediction(f.point, f.quantiles)


def online_models(horizon: EvalHorizon) -> list:
    """The River models and the ensemble for one horizon (fresh instances)."""
    return [RiverModel(horizon, model="linear"), RiverModel(horizon, model="profile"), Ensemble(horizon)]


def weather_models(weather: WeatherSeries):
    """A model factory (as :func:`online_models`) of the weather-aware models: ``lightgbm-clearsky`` (clear-sky
    GHI only: needs no weather forecast), ``river-linear-weather``, ``lightgbm-weather`` and ``ensemble-weather``
    (every field of
    ``weather``; scored with the measured weather as the forecast, an upper bound on what a real forecast
    gives)."""
    clear = ("ghi_clear_w_m2",)

    def factory(horizon: EvalHorizon) -> list:
        out: list = [
            RiverModel(horizon, model="linear", weather=weather),
            LightGbmPeer(horizon.points, name="lightgbm-weather", weather=weather),
            Ensemble(horizon, name="ensemble-weather", options={"weather": weather}),
        ]
        if set(clear) <= set(weather.fields):
            out.insert(0, LightGbmPeer(horizon.points, name="lightgbm-clearsky", weather=weather.only(clear)))
        return out

    return factory
