"""Per-prosumer forecasting state as JSON: the learnt models, recent history, pending forecasts and accuracy sums.

The forecasts stage keeps one value per prosumer (state key ``f:<prosumer_id>``, see
:mod:`streams.analytics.forecast_processor`). It holds what a :class:`~streams.analytics.forecast_stream.
ForecastStream` restricted to that prosumer remembers:

- the prosumer's event-time watermark (latest ``interval_end``, UTC epoch ms);
- per property (``ENERGY_CONSUMPTION``, ``ENERGY_PRODUCTION``) one :class:`SeriesState`: the
  :class:`~streams.analytics.forecasting.EntityForecaster` (:class:`ForecasterState`: the last week of Wh per
  15-min step, the day-type profile, the scale, the residual statistics and the River regression's learnt
  parameters, :class:`~streams.analytics.river_params.BlrParams`) and the issued points not scored yet per
  horizon;
- per (property, horizon) one :class:`HorizonAccuracy`: the running accuracy sums, the end of the last scored
  point (``as_of``) and the ``as_of`` of the last ForecastAccuracy record emitted.

Everything is numbers and strings, written with pydantic (floats exactly, NaN as ``NaN``) and validated when
read, so a stored value can neither execute code nor load half-formed. The two long float series (history and
profile) are stored as base64 of little-endian IEEE-754 doubles (:data:`PackedFloats`): exact, and the value is
about 35 KB per prosumer with a week of history instead of 54 KB as JSON numbers (every record writes it to the
changelog, and a restore reads it back). The prosumer id is not stored in the value (it is the key), so the
codec needs it back in :func:`load_stream`.

The ``holt-winters`` model is not supported: its River ``HoltWinters`` keeps level, trend and season components
that this codec does not serialise, and the stage never uses it (it is there for offline measurement in
``edream forecast evaluate``). :func:`dump_forecaster` refuses it with a clear error.
"""

from __future__ import annotations

import base64
import math
from collections import deque
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from edream.serde import Serde
from streams.analytics.accuracy import OnlineAccuracy
from streams.analytics.forecast_service import ForecastService
from streams.analytics.forecast_stream import ForecastStream
from streams.analytics.forecasting import DAY_TYPES, HORIZONS, EntityForecaster
from streams.analytics.river_params import BlrParams, blr_from_params, blr_params
from streams.analytics.weather import WeatherSource

#: attributes of an EntityForecaster this codec stores (``period`` is derived, ``hw`` is refused, see above)
FORECASTER_ATTRIBUTES = frozenset(
    {
        "step_ms",
        "model",
        "period",
        "alpha",
        "hist",
        "last_ts",
        "profile",
        "scale",
        "n",
        "lr",
        "hw",
        "res_last",
        "res_cov",
        "res_var",
        "res_sq",
        "weather",
        "weather_fields",
        "yield_wh",
        "yield_ghi",
    }
)
KIND = "PROSUMER"


def _pack(values: list[float]) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode("ascii")


def _unpack(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    raw = base64.b64decode(value, validate=True)
    if len(raw) % 8:
        raise ValueError(f"packed floats of {len(raw)} bytes, not a multiple of 8")
    return np.frombuffer(raw, dtype="<f8").tolist()


#: a list of floats stored in JSON as one base64 string of little-endian doubles (exact, NaN included)
PackedFloats = Annotated[
    list[float], BeforeValidator(_unpack), PlainSerializer(_pack, return_type=str, when_used="json")
]


class _State(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="constants", extra="forbid")


class ForecasterState(_State):
    """One :class:`EntityForecaster`; ``hist`` oldest first (NaN where a step is unknown), ``profile`` one Wh
    value per (day type, slot of day) at ``day_type * steps_per_day + slot`` (NaN: not seen yet), ``scale``
    and ``res_sq`` in Wh and Wh^2, residuals in scaled units."""

    step_ms: int
    model: str
    profile_alpha: float
    hist: PackedFloats
    last_ts: int | None
    profile: PackedFloats
    scale: float
    n: int
    res_last: float
    res_cov: float
    res_var: float
    res_sq: float
    regression: BlrParams
    weather_fields: list[str] = []  # the weather it reads (the source is an input, not state)
    yield_wh: float = 0.0
    yield_ghi: float = 0.0


class SeriesState(_State):
    """One property of the prosumer: its forecaster and, per horizon name, the issued points not scored yet
    (start ms, end ms, predicted Wh, seasonal-naive Wh, lower Wh, upper Wh)."""

    property: str
    forecaster: ForecasterState
    pending: dict[
        str, list[tuple[int, int, float, float, float, float] | tuple[int, int, float, float]]
    ] = {}  # a 4-tuple (stored before lower/upper were kept) loads with an unknown band


class HorizonAccuracy(_State):
    """Running accuracy of one (property, horizon): the sums, ``scored_until`` (end of the last scored point,
    ms) and ``emitted_as_of`` (``as_of`` of the last ForecastAccuracy record emitted, None before the first)."""

    property: str
    horizon: str
    sums: OnlineAccuracy
    scored_until: int | None = None
    emitted_as_of: int | None = None


class ProsumerForecastState(_State):
    """Everything the forecasts stage remembers about one prosumer; ``watermark``: latest interval end (ms).
    ``accuracy`` keeps the order in which the records are emitted."""

    watermark: int | None
    step_ms: int
    model: str
    properties: list[str]
    series: list[SeriesState]
    accuracy: list[HorizonAccuracy] = []


def dump_forecaster(f: EntityForecaster) -> ForecasterState:
    attrs = frozenset(vars(f))
    if attrs != FORECASTER_ATTRIBUTES:
        raise TypeError(
            f"EntityForecaster attributes changed (new {sorted(attrs - FORECASTER_ATTRIBUTES)}, gone "
            f"{sorted(FORECASTER_ATTRIBUTES - attrs)}): update streams/analytics/forecast_state.py"
        )
    if f.model == "holt-winters":
        raise ValueError(
            "the holt-winters model's River state is not serialisable; the stage does not use it"
        )
    return ForecasterState(
        step_ms=f.step_ms,
        model=f.model,
        profile_alpha=f.alpha,
        hist=list(f.hist),
        last_ts=f.last_ts,
        profile=f.profile,
        scale=f.scale,
        n=f.n,
        res_last=f.res_last,
        res_cov=f.res_cov,
        res_var=f.res_var,
        res_sq=f.res_sq,
        regression=blr_params(f.lr),
        weather_fields=list(f.weather_fields),
        yield_wh=f.yield_wh,
        yield_ghi=f.yield_ghi,
    )


def load_forecaster(s: ForecasterState, weather: WeatherSource | None = None) -> EntityForecaster:
    """The forecaster in exactly the stored state, reading its weather fields from ``weather``."""
    f = EntityForecaster(
        s.step_ms,
        model=s.model,
        profile_alpha=s.profile_alpha,
        weather=weather,
        weather_fields=tuple(s.weather_fields),
    )
    f.yield_wh, f.yield_ghi = s.yield_wh, s.yield_ghi
    if len(s.hist) > f.hist.maxlen:
        raise ValueError(f"history of {len(s.hist)} steps, at most {f.hist.maxlen} kept")
    f.hist = deque(s.hist, maxlen=f.hist.maxlen)
    f.last_ts = s.last_ts
    if len(s.profile) != DAY_TYPES * f.period:
        raise ValueError(f"profile of {len(s.profile)} values, not {DAY_TYPES} x {f.period}")
    f.profile = list(s.profile)
    f.scale, f.n = s.scale, s.n
    f.res_last, f.res_cov, f.res_var, f.res_sq = s.res_last, s.res_cov, s.res_var, s.res_sq
    f.lr = blr_from_params(s.regression)
    return f


def _accuracy_key(prosumer_id: str, prop: str, horizon: str) -> str:
    """Key of ForecastStream.emitted_as_of: the accuracy event id without its ``as_of``."""
    return f"{prosumer_id}/{prop}/{HORIZONS[horizon].granularity}"


def dump_stream(stream: ForecastStream, prosumer_id: str) -> ProsumerForecastState:
    """The state of ``stream``, a ForecastStream that has seen only ``prosumer_id``'s intervals."""
    svc = stream.service
    if svc.portfolios:
        raise ValueError("portfolio forecasts are not part of the per-prosumer state")
    foreign = {k for k in svc.models if k[1] != prosumer_id or k[0] != KIND}
    if foreign:
        raise ValueError(f"state of {prosumer_id!r} holds other entities: {sorted(foreign)}")
    series = [
        SeriesState(
            property=key[2],
            forecaster=dump_forecaster(m),
            pending={h: list(p.points) for (k, h), p in svc.pending.items() if k == key and p.points},
        )
        for key, m in svc.models.items()
    ]
    if set(svc.scored_until) - set(svc.accuracy):
        raise ValueError(f"{prosumer_id!r}: scored points without accuracy sums")
    accuracy = [
        HorizonAccuracy(
            property=key[2],
            horizon=h,
            sums=acc,
            scored_until=svc.scored_until.get((key, h)),
            emitted_as_of=stream.emitted_as_of.get(_accuracy_key(prosumer_id, key[2], h)),
        )
        for (key, h), acc in svc.accuracy.items()
    ]
    return ProsumerForecastState(
        watermark=stream.watermark,
        step_ms=svc.step_ms,
        model=svc.model,
        properties=list(svc.properties),
        series=series,
        accuracy=accuracy,
    )


def load_stream(
    state: ProsumerForecastState,
    prosumer_id: str,
    serde: Serde,
    forecast_topic: str,
    accuracy_topic: str,
    weather: WeatherSource | None = None,
) -> ForecastStream:
    """The ForecastStream of ``prosumer_id`` in exactly the stored state (dict orders included: they decide
    the order of the emitted records), its models reading ``weather``."""
    svc = ForecastService(
        step_ms=state.step_ms, model=state.model, properties=tuple(state.properties), weather=weather
    )
    stream = ForecastStream(serde, svc, forecast_topic=forecast_topic, accuracy_topic=accuracy_topic)
    stream.watermark = state.watermark
    for s in state.series:
        key = (KIND, prosumer_id, s.property)
        svc.models[key] = load_forecaster(s.forecaster, weather)
        for h, points in s.pending.items():
            svc.pending[(key, _horizon(h))].points = [
                p if len(p) == 6 else (*p, math.nan, math.nan) for p in points
            ]
    for a in state.accuracy:
        key = (KIND, prosumer_id, a.property)
        svc.accuracy[(key, _horizon(a.horizon))] = a.sums
        if a.scored_until is not None:
            svc.scored_until[(key, a.horizon)] = a.scored_until
        if a.emitted_as_of is not None:
            stream.emitted_as_of[_accuracy_key(prosumer_id, a.property, a.horizon)] = a.emitted_as_of
    return stream


def _horizon(name: str) -> str:
    if name not in HORIZONS:
        raise ValueError(f"unknown horizon {name!r} in stored forecast state")
    return name


def encode(state: ProsumerForecastState) -> bytes:
    return state.model_dump_json().encode()


def decode(blob: bytes) -> ProsumerForecastState:
    """Parse and validate a stored value (raises pydantic.ValidationError on anything malformed)."""
    return ProsumerForecastState.model_validate_json(blob)
