"""Forecasting for many entities from the IntervalEnergy stream: prosumers and portfolio aggregates.

:class:`ForecastService` is pure and engine-independent. Feed it closed intervals (``observe_interval``, records
of avro/IntervalEnergy.avsc); per prosumer it learns consumption (``import_wh``) and production (``export_wh``)
online, each series from its first non-zero energy on (a consumer without generation gets no production
forecast: a series of zeros needs none; see ``_start_model`` for what it learns first). Per portfolio (a
``prosumer -> portfolio`` map) it sums the latest version of each device's interval
and learns from the sum once ``close_until(ts)`` says the slot is complete (call it with the interval watermark).
``issue(now_ms, horizon)`` returns Forecast records (avro/Forecast.avsc) for every entity; each issued point is
scored when its actuals have arrived (MAE, NMAE, MAPE, MASE vs seasonal naive) and ``accuracy_records`` returns
ForecastAccuracy records (avro/ForecastAccuracy.avsc).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.analytics.accuracy import OnlineAccuracy
from streams.analytics.forecasting import HORIZONS, EntityForecaster, forecast_record
from streams.analytics.weather import WeatherSource

CONSUMPTION = "ENERGY_CONSUMPTION"
PRODUCTION = "ENERGY_PRODUCTION"

EntityKey = tuple[str, str, str]  # (entity_kind, entity_id, property)
#: quantiles the forecast points' lower / upper stand for (EntityForecaster: a normal 80 % interval)
BAND = (0.1, 0.9)
#: the weather each property's model reads when the service has a weather source: production follows the sun
#: (and loses a little to heat), consumption the heating and cooling degrees
WEATHER_FIELDS = {CONSUMPTION: ("temp_c",), PRODUCTION: ("ghi_w_m2", "ghi_clear_w_m2", "temp_c")}


def _nan(x: float | None) -> float:
    return math.nan if x is None else x


@dataclass
class _Pending:
    """Issued points not scored yet: (point start, point end, predicted Wh, seasonal-naive Wh, lower Wh, upper Wh;
    NaN where the forecast had no band)."""

    points: list[tuple[int, int, float, float, float, float]] = field(default_factory=list)


class ForecastService:
    def __init__(
        self,
        portfolios: Mapping[str, str] | None = None,
        step_ms: int = 900_000,
        model: str = "linear",
        properties: tuple[str, ...] = (CONSUMPTION, PRODUCTION),
        weather: WeatherSource | None = None,
    ):
        """``weather``: the site's weather; a series started while it is set reads :data:`WEATHER_FIELDS` of its
        property (None: no weather features)."""
        self.weather = weather
        self.portfolios = dict(portfolios or {})
        self.step_ms = step_ms
        self.model = model
        self.properties = properties
        self.models: dict[EntityKey, EntityForecaster] = {}
        self.pending: dict[tuple[EntityKey, str], _Pending] = defaultdict(_Pending)
        self.accuracy: dict[tuple[EntityKey, str], OnlineAccuracy] = defaultdict(OnlineAccuracy)
        self.scored_until: dict[tuple[EntityKey, str], int] = {}
        # portfolio -> slot start -> device -> (version, {property: Wh})
        self._buckets: dict[str, dict[int, dict[str, tuple[int, dict[str, float]]]]] = defaultdict(dict)

    def _start_model(self, key: EntityKey, ts: int) -> EntityForecaster:
        """A new model for ``key`` at its first non-zero step ``ts``. The series was 0 Wh wherever the entity's
        other series were known in the week before: those zeros are learnt first (a PV site's nights before
        its first sunny interval)."""
        fields = WEATHER_FIELDS[key[2]] if self.weather is not None else ()
        m = self.models[key] = EntityForecaster(
            self.step_ms, model=self.model, weather=self.weather, weather_fields=fields
        )
        known: set[int] = set()
        for (kind, entity, _), other in self.models.items():
            if (kind, entity) == key[:2] and other is not m and other.last_ts is not None:
                first = other.last_ts - (len(other.hist) - 1) * self.step_ms
                known.update(first + i * self.step_ms for i, v in enumerate(other.hist) if not math.isnan(v))
        for t in sorted(t for t in known if t < ts):
            m.observe(t, 0.0)
        return m

    @staticmethod
    def _values(rec: Mapping[str, Any]) -> dict[str, float]:
        return {CONSUMPTION: float(rec["import_wh"]), PRODUCTION: float(rec["export_wh"])}

    def observe_interval(self, rec: Mapping[str, Any]) -> None:
        """Learn from one closed interval (a correction of an already learned slot only updates portfolios)."""
        ts, vals = int(rec["interval_start"]), self._values(rec)
        for prop in self.properties:
            self._observe(("PROSUMER", rec["prosumer_id"], prop), ts, vals[prop])
        portfolio = self.portfolios.get(rec["prosumer_id"])
        if portfolio is not None:
            slot = self._buckets[portfolio].setdefault(ts, {})
            old = slot.get(rec["device_id"])
            if old is None or old[0] <= int(rec.get("version", 1)):
                slot[rec["device_id"]] = (int(rec.get("version", 1)), vals)

    def close_until(self, ts_ms: int) -> None:
        """Portfolio slots starting before ``ts_ms - step`` are complete: learn from their sums, in time order."""
        for portfolio, slots in self._buckets.items():
            for start in sorted(s for s in slots if s + self.step_ms <= ts_ms):
                devices = slots.pop(start)
                for prop in self.properties:
                    total = sum(v[prop] for _, v in devices.values())
                    self._observe(("PORTFOLIO", portfolio, prop), start, total)

    def _observe(self, key: EntityKey, ts: int, wh: float) -> None:
        m = self.models.get(key)
        if m is None:
            if wh == 0.0:
                return  # a series that has only been 0 (a consumer's production) is not forecast
            m = self._start_model(key, ts)
        m.observe(ts, wh)
        self._score(key, m)

    def _score(self, key: EntityKey, m: EntityForecaster) -> None:
        if m.last_ts is None:
            return
        known_until = m.last_ts + self.step_ms
        for horizon in HORIZONS:
            pend = self.pending.get((key, horizon))
            if not pend or not pend.points:
                continue
            keep = []
            for point in pend.points:
                start, end, pred, naive, lower, upper = point
                if end > known_until:
                    keep.append(point)
                    continue
                actual = sum(m.value_at(t) for t in range(start, end, self.step_ms))
                if not math.isnan(actual):
                    self.accuracy[(key, horizon)].update(actual, pred, naive)
                    self.accuracy[(key, horizon)].update_band(actual, lower, upper, *BAND)
                    self.scored_until[(key, horizon)] = end
            pend.points = keep

    def issue(self, now_ms: int, horizon: str) -> list[dict[str, Any]]:
        """Forecast records of every entity for ``horizon``, starting at the step boundary at or after now."""
        h = HORIZONS[horizon]
        start = -(-now_ms // self.step_ms) * self.step_ms
        out = []
        for key, m in self.models.items():
            if m.n == 0:
                continue
            kind, entity, prop = key
            points = m.forecast_points(start, h)
            naive = m.naive_points(start, h)
            self.pending[(key, horizon)].points.extend(
                (p["ts"], p["ts"] + h.point_ms, p["value"], nv, _nan(p["lower"]), _nan(p["upper"]))
                for p, nv in zip(points, naive, strict=True)
            )
            out.append(forecast_record(entity, kind, prop, h, start, self.model, points))
        return out

    def accuracy_records(self) -> list[dict[str, Any]]:
        out = []
        for (key, horizon), acc in self.accuracy.items():
            if not acc.n:
                continue
            kind, entity, prop = key
            f = acc.figures()
            gran = HORIZONS[horizon].granularity
            as_of = self.scored_until[(key, horizon)]

            def opt(x: float) -> float | None:
                return None if math.isnan(x) else x

            out.append(
                {
                    "event_id": f"{entity}/{prop}/{gran}/{as_of}",
                    "entity_id": entity,
                    "entity_kind": kind,
                    "property": prop,
                    "prediction_granularity": gran,
                    "model": self.model,
                    "as_of": as_of,
                    "points": acc.n,
                    "mae_wh": opt(f["mae"]),
                    "nmae": opt(f["nmae"]),
                    "mape": opt(f["mape"]),
                    "mase": opt(f["mase"]),
                    "naive_mae_wh": opt(f["naive_mae"]),
                    "pinball_wh": opt(f["pinball"]),
                    "coverage": opt(f["coverage"]),
                }
            )
        return out
