"""The ensemble forecasts of one prosumer from its 15-minute intervals: Forecast and ForecastAccuracy records.

Used by the forecasts stage with ``FORECAST_MODEL=ensemble`` (:mod:`streams.analytics.forecast_processor`).
Per property (consumption = ``import_wh``, production = ``export_wh``) and horizon one
:class:`~streams.analytics.ensemble.EnsembleForecaster` runs on the horizon's point grid (60 min for day-ahead
and hour-ahead, 30 min for intra-day). The 15-minute intervals of a point are summed; the point is *closed* when
its last interval arrives, or when an interval of a later point does (a point with a missing interval is
observed as unknown). After closing a point ending at ``E`` (UTC epoch ms) the series issues a forecast at ``E``
if ``E`` is a block start of the horizon: hour-ahead every hour, intra-day every 4 h, day-ahead at 00:00 UTC -
exactly the calls of the evaluation harness (:class:`~streams.analytics.evaluation.online_models.Ensemble`:
observe every closed point, issue at every block start), so the stage's numbers are the harness's numbers.

Forecast records carry ``value`` = the ensemble point, ``lower``/``upper`` = its conformal P10/P90 (null until
calibrated). Every closed point scores the issued points it covers: MAE/NMAE/MAPE, MASE against the seasonal
naive (the point a day earlier, as known at issue), pinball loss of P10/P90 and P10-P90 coverage; a
ForecastAccuracy record follows whenever a (property, horizon)'s ``as_of`` moved. Ids are deterministic.

State (JSON, :mod:`streams.analytics.ensemble_state`): the open points of a prosumer are small and change with
every interval (:class:`OpenPoints`); each series is large (tens of KB) and changes only when one of its points
closes (every 4th interval for hourly points, every 2nd for 30-min points), so the stage keeps them under
separate keys and loads a series only when a point of it closes.

Members: the online ones (:data:`STAGE_MEMBERS`). The LightGBM member is not run per entity in the stage: its
model text measured 150-580 KB per (entity, property, horizon) at 50-200 rounds and a fit 0.6-2.2 s (see
``tools/bench/forecasts.py``), i.e. several MB of partition state per prosumer; see the stage README.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from streams.analytics.accuracy import OnlineAccuracy
from streams.analytics.ensemble import EnsembleForecaster
from streams.analytics.ensemble_state import EnsembleState, dump_ensemble, load_ensemble
from streams.analytics.forecast_service import BAND, CONSUMPTION, PRODUCTION, WEATHER_FIELDS
from streams.analytics.forecast_state import _State
from streams.analytics.forecasting import DAY_MS, HORIZONS, Horizon, forecast_record
from streams.analytics.weather import FieldsOf, WeatherSource

MODEL = "ensemble"
STEP_MS = 900_000  # interval length of meter.intervals.15m.v1
STAGE_MEMBERS = ("linear", "profile", "seasonal-week", "persistence")
#: options of every stage ensemble: online members, 8 days of kept history (the weekly member needs 7)
STAGE_OPTIONS: dict[str, Any] = {"members": STAGE_MEMBERS, "history_days": 0}
#: block length (ms) per horizon: a forecast is issued at every block start (the harness's origins)
ISSUE_EVERY_MS = {"day-ahead": DAY_MS, "intra-day": 4 * 3_600_000, "hour-ahead": 3_600_000}

PROPERTIES = {CONSUMPTION: "import_wh", PRODUCTION: "export_wh"}


class OpenPoints(_State):
    """Per series name (``property/horizon``) the point being summed: its start (ms) and 15-min energies (Wh,
    NaN = not arrived). Small: stored under its own key, written by every interval."""

    points: dict[str, tuple[int, list[float]]] = Field(default_factory=dict)

    def add(self, name: str, point_ms: int, ts: int, wh: float) -> list[tuple[int, float]]:
        """Add the interval starting at ``ts`` (ms) with ``wh`` Wh to series ``name``; returns the points it
        closes as (start ms, Wh; NaN when an interval of it is missing)."""
        per = point_ms // STEP_MS
        start = ts - ts % point_ms
        out = []
        cur = self.points.get(name)
        if cur is not None and start < cur[0]:
            return []  # its point is closed: the online models do not unlearn
        if cur is not None and start > cur[0]:
            out.append((cur[0], math.fsum(cur[1])))
            cur = None
        if cur is None:
            cur = self.points[name] = (start, [math.nan] * per)
        cur[1][(ts - start) // STEP_MS] = wh  # a correction of the open point replaces the value
        if (ts - start) // STEP_MS == per - 1:
            out.append((start, math.fsum(cur[1])))
            del self.points[name]
        return out


@dataclass
class EnsembleSeries:
    """One (property, horizon): the forecaster, issued points not scored yet, accuracy sums."""

    prop: str
    horizon: Horizon
    model: EnsembleForecaster
    pending: list[tuple[int, float, float, float, float]] = field(
        default_factory=list
    )  # ts, point, naive, P10, P90
    accuracy: OnlineAccuracy = field(default_factory=OnlineAccuracy)
    scored_until: int | None = None  # end of the last scored point (ms)
    emitted_as_of: int | None = None

    @classmethod
    def new(
        cls,
        prop: str,
        horizon: Horizon,
        options: dict[str, Any] | None = None,
        weather: WeatherSource | None = None,
    ) -> EnsembleSeries:
        """A fresh series; with ``weather`` its linear member reads the property's fields of it
        (:data:`~streams.analytics.forecast_service.WEATHER_FIELDS`)."""
        opts = STAGE_OPTIONS if options is None else options
        wx = None if weather is None else FieldsOf(weather, WEATHER_FIELDS[prop])
        return cls(prop, horizon, EnsembleForecaster(horizon.point_ms, horizon.points, **opts, weather=wx))

    @property
    def name(self) -> str:
        return f"{self.prop}/{self.horizon.name}"

    def close(self, start: int, value: float) -> list[tuple[int, Any]]:
        """Observe the closed point at ``start`` (ms) of ``value`` Wh (NaN: unknown), score the issued points it
        covers; returns the (issue time, :class:`~streams.analytics.ensemble.EnsembleForecast`) issued."""
        for ts, point, naive, lo, hi in self.pending:
            if ts == start and not math.isnan(value):
                self.accuracy.update(value, point, naive)
                self.accuracy.update_band(value, lo, hi, *BAND)
                self.scored_until = start + self.horizon.point_ms
        self.pending = [p for p in self.pending if p[0] > start]
        self.model.observe(start, value)
        end = start + self.horizon.point_ms
        if end % ISSUE_EVERY_MS[self.horizon.name]:
            return []
        f = self.model.forecast(end)
        if any(math.isnan(v) for v in f.point):
            return []
        lo, hi = f.quantiles[BAND[0]], f.quantiles[BAND[1]]
        for k, v in enumerate(f.point):
            t = end + k * self.horizon.point_ms
            self.pending.append((t, float(v), self.model.seasonal_naive(t), float(lo[k]), float(hi[k])))
        return [(end, f)]

    def forecast_record(self, entity_id: str, issued_at: int, f: Any) -> dict[str, Any]:
        """The Forecast record (avro/Forecast.avsc) of an issued forecast: value = point, lower/upper = P10/P90."""
        lo, hi = f.quantiles[BAND[0]], f.quantiles[BAND[1]]
        pts = [
            {
                "ts": issued_at + k * self.horizon.point_ms,
                "value": float(v),
                "lower": _opt(lo[k]),
                "upper": _opt(hi[k]),
            }
            for k, v in enumerate(f.point)
        ]
        return forecast_record(entity_id, "PROSUMER", self.prop, self.horizon, issued_at, MODEL, pts)

    def accuracy_record(self, entity_id: str) -> dict[str, Any] | None:
        """The ForecastAccuracy record when ``as_of`` moved since the last one (None otherwise)."""
        if not self.accuracy.n or self.scored_until == self.emitted_as_of:
            return None
        self.emitted_as_of = as_of = self.scored_until
        g, f = self.horizon.granularity, self.accuracy.figures()
        return {
            "event_id": f"{entity_id}/{self.prop}/{g}/{as_of}",
            "entity_id": entity_id,
            "entity_kind": "PROSUMER",
            "property": self.prop,
            "prediction_granularity": g,
            "model": MODEL,
            "as_of": as_of,
            "points": self.accuracy.n,
            "mae_wh": _opt(f["mae"]),
            "nmae": _opt(f["nmae"]),
            "mape": _opt(f["mape"]),
            "mase": _opt(f["mase"]),
            "naive_mae_wh": _opt(f["naive_mae"]),
            "pinball_wh": _opt(f["pinball"]),
            "coverage": _opt(f["coverage"]),
        }


def _opt(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


#: every series of a prosumer: (property, horizon), in the order records are emitted
SERIES = tuple((p, h) for p in PROPERTIES for h in HORIZONS.values())


def closed_points(open_points: OpenPoints, rec: dict[str, Any]) -> list[tuple[str, Horizon, int, float]]:
    """Add one validated IntervalEnergy record to the open points; the points it closes as (property, horizon,
    point start ms, Wh), in series order."""
    ts = int(rec["interval_start"])
    if int(rec["interval_end"]) - ts != STEP_MS:
        raise ValueError(f"interval of {int(rec['interval_end']) - ts} ms; the ensemble takes {STEP_MS} ms")
    out = []
    for prop, h in SERIES:
        for start, wh in open_points.add(f"{prop}/{h.name}", h.point_ms, ts, float(rec[PROPERTIES[prop]])):
            out.append((prop, h, start, wh))
    return out


# -- state of a series (JSON, see streams.analytics.ensemble_state) ------------------------------------------------
class SeriesState(_State):
    property: str
    horizon: str
    model: EnsembleState
    pending: list[tuple[int, float, float, float, float]] = Field(default_factory=list)
    accuracy: OnlineAccuracy
    scored_until: int | None = None
    emitted_as_of: int | None = None


def encode_series(s: EnsembleSeries) -> bytes:
    return (
        SeriesState(
            property=s.prop,
            horizon=s.horizon.name,
            model=dump_ensemble(s.model),
            pending=s.pending,
            accuracy=s.accuracy,
            scored_until=s.scored_until,
            emitted_as_of=s.emitted_as_of,
        )
        .model_dump_json()
        .encode()
    )


def decode_series(blob: bytes, weather: WeatherSource | None = None) -> EnsembleSeries:
    """Parse, validate and rebuild a stored series reading ``weather`` (raises pydantic.ValidationError/ValueError
    if malformed); its members keep the weather fields they were built with."""
    s = SeriesState.model_validate_json(blob)
    if s.horizon not in HORIZONS or s.property not in PROPERTIES:
        raise ValueError(f"stored ensemble series of unknown property/horizon {s.property}/{s.horizon}")
    wx = None if weather is None else FieldsOf(weather, WEATHER_FIELDS[s.property])
    return EnsembleSeries(
        s.property, HORIZONS[s.horizon], load_ensemble(s.model, wx), list(s.pending), s.accuracy, s.scored_until,
        s.emitted_as_of,
    )  # fmt: skip


def encode_open(o: OpenPoints) -> bytes:
    return o.model_dump_json().encode()


def decode_open(blob: bytes | None) -> OpenPoints:
    return OpenPoints() if blob is None else OpenPoints.model_validate_json(blob)
