"""Online energy forecasting per entity (prosumer or portfolio) with River, plus a seasonal-naive reference.

One :class:`EntityForecaster` follows one regular series of interval energies (Wh per step, default 15-minute
steps, UTC epoch ms step starts). It learns online from every closed interval (``observe``) and issues
Energy-Profile forecasts for the eDREAM horizons (``forecast``):

=============  ==================  =============  =========================
horizon        Forecast enum       span           profile granularity
=============  ==================  =============  =========================
day-ahead      DAYAHEAD            24 h           60 min
intra-day      INTRA_DAY           4 h            30 min
hour-ahead     ONE_HOUR_AHEAD      1 h            60 min
=============  ==================  =============  =========================

Models (``model=``), all sharing the same online code path:

* ``seasonal-naive``: the value one day earlier (the MASE reference);
* ``profile``: exponentially weighted mean per (day type, time-of-day slot); day types Mon-Fri, Sat, Sun;
* ``linear`` (default): a River ``BayesianLinearRegression`` (exact online Bayesian least squares; optional
  forgetting ``smoothing``, off by default: it measured worse at hourly steps) on scale-free features of the target step - yesterday, a week ago, the day-type profile, and the
  mean of the last seven same-slot values (no intercept: it measured worse) - plus a
  residual correction that decays with the lead time (AR(1) on the last residual, coefficient estimated
  online), which helps the short horizons;
* ``holt-winters``: River ``HoltWinters`` with daily seasonality (kept for measurement; slower and weaker here).

Every feature of a target step lies at least one day before it, so the same model serves every lead time up to
24 h without leaking the future.

With a weather source (:class:`~streams.analytics.weather.WeatherSource`: observed weather for the steps it
learns, the weather forecast for the steps it forecasts) the ``linear`` model gains features of the target step's
weather (:data:`WEATHER_FEATURES`): irradiance times the series' energy per unit irradiance learnt so far (a PV
system's yield) and heating / cooling degrees of the air temperature.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from river import linear_model, time_series

from streams.analytics.weather import WeatherSource

DAY_MS = 86_400_000
DAY_TYPES = 3  # see day_type
MODELS = ("linear", "profile", "seasonal-naive", "holt-winters")
# weather field -> regression features it adds (see EntityForecaster._weather_features)
WEATHER_FEATURES = {"ghi_w_m2": ("ghi",), "ghi_clear_w_m2": ("ghi_clear",), "temp_c": ("hdd", "cdd")}
HEATING_BASE_C = 15.0  # degC below which a building heats (heating degrees = base - temperature)
COOLING_BASE_C = 22.0  # degC above which it cools
MIN_GHI_W_M2 = 20.0  # steps with less irradiance do not teach the yield


@dataclass(frozen=True)
class Horizon:
    name: str
    granularity: str  # avro enum PredictionGranularity
    span_ms: int
    point_ms: int  # profile granularity

    @property
    def points(self) -> int:
        return self.span_ms // self.point_ms


HORIZONS: dict[str, Horizon] = {
    "day-ahead": Horizon("day-ahead", "DAYAHEAD", DAY_MS, 3_600_000),
    "intra-day": Horizon("intra-day", "INTRA_DAY", 4 * 3_600_000, 1_800_000),
    "hour-ahead": Horizon("hour-ahead", "ONE_HOUR_AHEAD", 3_600_000, 3_600_000),
}


def day_type(ts_ms: int) -> int:
    """0 Monday-Friday, 1 Saturday, 2 Sunday (UTC)."""
    wd = (ts_ms // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday (3)
    return 0 if wd < 5 else wd - 4


class EntityForecaster:
    """Online forecaster of one series; see the module docstring. Values are Wh per step."""

    def __init__(
        self,
        step_ms: int = 900_000,
        model: str = "linear",
        profile_alpha: float = 0.15,
        smoothing: float | None = None,
        weather: WeatherSource | None = None,
        weather_fields: tuple[str, ...] = (),
    ):
        """``weather``/``weather_fields``: where the ``linear`` model reads the fields of
        :data:`WEATHER_FEATURES` it uses (none: no weather features)."""
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; one of {MODELS}")
        unknown = set(weather_fields) - set(WEATHER_FEATURES)
        if unknown:
            raise ValueError(f"unknown weather fields {sorted(unknown)}; known: {tuple(WEATHER_FEATURES)}")
        if DAY_MS % step_ms:
            raise ValueError("step must divide one day")
        self.step_ms = step_ms
        self.model = model
        self.period = DAY_MS // step_ms  # steps per day
        self.alpha = profile_alpha
        self.hist: deque[float] = deque(maxlen=7 * self.period + 1)  # hist[-1] is the last step seen
        self.last_ts: int | None = None
        # EW mean Wh per (day type, slot of day) at ``day_type * period + slot``; NaN: not seen yet
        self.profile: list[float] = [math.nan] * (DAY_TYPES * self.period)
        self.scale = 0.0  # EW mean of |y|, sets the unit of the regression
        self.n = 0
        self.lr = linear_model.BayesianLinearRegression(alpha=1.0, beta=1.0, smoothing=smoothing)
        self.hw = time_series.HoltWinters(alpha=0.1, beta=0.01, gamma=0.2, seasonality=self.period)
        # residual statistics (in scaled units): last residual, lag-1 autocovariance, variance (EW)
        self.res_last = 0.0
        self.res_cov = 0.0
        self.res_var = 1e-9
        self.res_sq = 0.0  # EW mean square residual in Wh^2 (prediction intervals)
        self.weather = weather  # None: every weather value unknown (the features fall back to neutral values)
        self.weather_fields = tuple(f for f in WEATHER_FEATURES if f in weather_fields)
        # EW sums of energy (Wh) and GHI (W/m2) over steps with sunshine: their ratio is the yield per W/m2
        self.yield_wh = 0.0
        self.yield_ghi = 0.0

    # -- history helpers ---------------------------------------------------------------------------------
    def _lag(self, ts: int, lag_steps: int) -> float:
        """Value at ``ts - lag_steps * step`` if it is in the history, else NaN."""
        if self.last_ts is None:
            return math.nan
        back = (self.last_ts - (ts - lag_steps * self.step_ms)) // self.step_ms
        if back < 0 or back >= len(self.hist):
            return math.nan
        return self.hist[-1 - back]

    def _day_lags(self, ts: int) -> list[float]:
        """Values 1..7 days before ``ts`` (NaN where not in the history): :meth:`_lag` of 1..7 periods at once."""
        if self.last_ts is None:
            return [math.nan] * 7
        hist, n, period = self.hist, len(self.hist), self.period
        back = (self.last_ts - ts) // self.step_ms
        out = []
        for k in range(1, 8):
            b = back + k * period
            out.append(hist[-1 - b] if 0 <= b < n else math.nan)
        return out

    def value_at(self, ts: int) -> float:
        """Observed value of the step starting at ``ts`` (NaN if unknown or older than a week)."""
        return self._lag(ts, 0)

    def _slot(self, ts: int) -> int:
        """Index of step ``ts`` in :attr:`profile`."""
        return day_type(ts) * self.period + (ts % DAY_MS) // self.step_ms

    def naive(self, ts: int) -> float:
        """Seasonal-naive (one day earlier) forecast of step ``ts``."""
        return self._lag(ts, self.period)

    def features(self, ts: int) -> dict[str, float]:
        """Scale-free regression features of target step ``ts``, all known one day before it (the weather's
        from the weather source: its forecast for ``ts``)."""
        x = self._scaled(self._raw_features(ts))
        return self._weather_features(self._weather_values(ts), x) if self.weather_fields else x

    def _raw_features(self, ts: int) -> tuple[float, float, float, float] | None:
        """The features of step ``ts`` in Wh (d1, d7, prof, wk), gaps filled; None when nothing is known
        (every feature is then the scale itself, 1.0 scaled)."""
        prof = self.profile[self._slot(ts)]
        lags = self._day_lags(ts)
        d1, d7 = lags[0], lags[6]
        week = [v for v in lags if not math.isnan(v)]
        if math.isnan(prof) and not week:
            return None
        wk = sum(week) / len(week) if week else prof
        fill = prof if not math.isnan(prof) else wk
        return (d1 if not math.isnan(d1) else fill, d7 if not math.isnan(d7) else fill, fill, wk)

    def _scaled(self, raw: tuple[float, float, float, float] | None) -> dict[str, float]:
        if raw is None:
            return {"d1": 1.0, "d7": 1.0, "prof": 1.0, "wk": 1.0}
        s = self.scale or 1.0
        return {"d1": raw[0] / s, "d7": raw[1] / s, "prof": raw[2] / s, "wk": raw[3] / s}

    def _weather_values(self, ts: int) -> dict[str, float]:
        """The weather fields used, for step ``ts`` (NaN where the source has none)."""
        w = self.weather
        return {f: w.value(f, ts, self.step_ms) if w is not None else math.nan for f in self.weather_fields}

    def _weather_features(self, wx: dict[str, float], x: dict[str, float]) -> dict[str, float]:
        """``x`` plus the weather features of a step whose weather is ``wx``: irradiance times the learnt yield
        in scaled units (the profile where either is unknown) and heating / cooling degrees / 10 (0 unknown)."""
        s = self.scale or 1.0
        y = self.yield_wh / self.yield_ghi if self.yield_ghi > 0 else math.nan
        for f, v in wx.items():
            if f == "temp_c":
                known = not math.isnan(v)
                x["hdd"] = max(HEATING_BASE_C - v, 0.0) / 10 if known else 0.0
                x["cdd"] = max(v - COOLING_BASE_C, 0.0) / 10 if known else 0.0
            else:
                x[WEATHER_FEATURES[f][0]] = y * v / s if not (math.isnan(v) or math.isnan(y)) else x["prof"]
        return x

    def _learn_yield(self, wh: float, wx: dict[str, float]) -> None:
        g = wx.get("ghi_w_m2", wx.get("ghi_clear_w_m2", math.nan))
        if not math.isnan(g) and g >= MIN_GHI_W_M2:
            self.yield_wh = 0.99 * self.yield_wh + wh
            self.yield_ghi = 0.99 * self.yield_ghi + g

    def _base(self, ts: int) -> float:
        """Model prediction (Wh) of step ``ts`` without the residual correction."""
        if self.model == "seasonal-naive":
            v = self.naive(ts)
            return v if not math.isnan(v) else self.scale
        if self.model == "profile":
            return self.features(ts)["prof"] * (self.scale or 1.0)
        if self.model == "holt-winters":
            if self.n <= self.period or self.last_ts is None:
                return self.features(ts)["prof"] * (self.scale or 1.0)
            lead = (ts - self.last_ts) // self.step_ms
            return float(self.hw.forecast(horizon=lead)[-1])
        return self._linear(self.features(ts))

    def _linear(self, x: dict[str, float]) -> float:
        """The ``linear`` model's prediction (Wh) from the features ``x`` of a step."""
        if self.n < 2 * self.period:  # warm-up: the profile is the better guess
            return x["prof"] * (self.scale or 1.0)
        return self.lr.predict_one(x) * (self.scale or 1.0)

    # -- online learning -----------------------------------------------------------------------------------
    def observe(self, ts: int, wh: float) -> None:
        """Learn from the closed step starting at ``ts`` (UTC epoch ms) with energy ``wh``."""
        if self.last_ts is not None:
            if ts <= self.last_ts:
                return  # replay or out-of-order correction: the online model does not unlearn
            missing = (ts - self.last_ts) // self.step_ms - 1
            self.hist.extend([math.nan] * min(missing, self.hist.maxlen))  # a longer gap empties the week
        if math.isnan(wh):
            self.hist.append(math.nan)
            self.last_ts = ts
            return
        raw = self._raw_features(ts) if self.model == "linear" else None
        wx = self._weather_values(ts) if self.weather_fields and self.model == "linear" else None
        if wx is None:
            pred = self._linear(self._scaled(raw)) if self.model == "linear" else self._base(ts)
        else:
            pred = self._linear(self._weather_features(wx, self._scaled(raw)))
        self.scale = abs(wh) if self.n == 0 else 0.995 * self.scale + 0.005 * abs(wh)
        s = self.scale or 1.0
        if wx is not None:  # the same features on the updated scale and yield
            self._learn_yield(wh, wx)
            self.lr.learn_one(self._weather_features(wx, self._scaled(raw)), wh / s)
        elif self.model == "linear":
            self.lr.learn_one(self._scaled(raw), wh / s)  # the same features on the updated scale
        elif self.model == "holt-winters":
            self.hw.learn_one(wh)
        r = (wh - pred) / s if not math.isnan(pred) else 0.0
        self.res_cov = 0.99 * self.res_cov + 0.01 * r * self.res_last
        self.res_var = 0.99 * self.res_var + 0.01 * r * r
        self.res_last = r
        self.res_sq = 0.99 * self.res_sq + 0.01 * (wh - pred) ** 2 if not math.isnan(pred) else self.res_sq
        i = self._slot(ts)
        old = self.profile[i]
        self.profile[i] = wh if math.isnan(old) else old + self.alpha * (wh - old)
        self.hist.append(wh)
        self.last_ts = ts
        self.n += 1

    @property
    def phi(self) -> float:
        """Lag-1 autocorrelation of the residuals, clipped to [0, 0.99]."""
        return min(max(self.res_cov / self.res_var, 0.0), 0.99) if self.res_var > 0 else 0.0

    def predict_steps(self, issued_at: int, steps: int) -> list[float]:
        """Per-step predictions (Wh) for the ``steps`` steps starting at ``issued_at``."""
        out = []
        lead0 = (issued_at - self.last_ts) // self.step_ms if self.last_ts is not None else 1
        corr = self.model in ("linear", "profile")
        phi, s = self.phi, self.scale or 1.0
        for h in range(steps):
            ts = issued_at + h * self.step_ms
            v = self._base(ts)
            if corr and self.n:
                v += self.res_last * s * phi ** (lead0 + h)
            out.append(v)
        return out

    def forecast_points(self, issued_at: int, horizon: Horizon) -> list[dict[str, Any]]:
        """Profile points (Wh per point) with an approximate 80 % interval, starting at ``issued_at``."""
        per = horizon.point_ms // self.step_ms
        vals = self.predict_steps(issued_at, horizon.points * per)
        sigma = math.sqrt(self.res_sq * per) if self.res_sq > 0 else None
        pts = []
        for i in range(horizon.points):
            v = sum(vals[i * per : (i + 1) * per])
            pts.append(
                {
                    "ts": issued_at + i * horizon.point_ms,
                    "value": v,
                    "lower": None if sigma is None else max(0.0, v - 1.2816 * sigma),
                    "upper": None if sigma is None else v + 1.2816 * sigma,
                }
            )
        return pts

    def naive_points(self, issued_at: int, horizon: Horizon) -> list[float]:
        """Seasonal-naive values (Wh per point) of the same points, NaN where history is missing."""
        per = horizon.point_ms // self.step_ms
        return [
            sum(self.naive(issued_at + (i * per + k) * self.step_ms) for k in range(per))
            for i in range(horizon.points)
        ]


def forecast_record(
    entity_id: str,
    entity_kind: str,
    prop: str,
    horizon: Horizon,
    issued_at: int,
    model: str,
    points: list[dict[str, Any]],
) -> dict[str, Any]:
    """Forecast event (avro/Forecast.avsc), id ``entity/property/granularity/issued_at``."""
    return {
        "event_id": f"{entity_id}/{prop}/{horizon.granularity}/{issued_at}",
        "entity_id": entity_id,
        "entity_kind": entity_kind,
        "property": prop,
        "prediction_granularity": horizon.granularity,
        "profile_granularity_minutes": horizon.point_ms // 60_000,
        "issued_at": issued_at,
        "model": model,
        "points": points,
    }
