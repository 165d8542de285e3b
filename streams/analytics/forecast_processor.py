"""The forecasts stage as a runtime processor: ``meter.intervals.15m.v1`` in, forecasts and accuracy out.

Engine-independent (:class:`~edream.runtime.contract.StageProcessor`). Per prosumer it keeps one state value
under ``f:<prosumer_id>`` (:mod:`streams.analytics.forecast_state`: the River models' learnt parameters, the
last week of intervals, pending forecasts to score, accuracy sums, the prosumer's event-time watermark) and runs
today's :class:`~streams.analytics.forecast_stream.ForecastStream` logic on it, restricted to that prosumer.

Per record: decode; validate (:func:`streams.validation.interval.check_interval`, before anything learns or a
watermark moves); check the message key is the prosumer id (the topic is keyed by ``prosumer_id``, so one
prosumer's intervals, and therefore its state, stay on one partition); load the prosumer's state, learn, issue
the horizons whose issue period the prosumer's watermark entered, score, store. Anything wrong raises, and the
runtime dead-letters the record with the reason and leaves the state untouched.

Event time is per prosumer. The hosted ForecastStream had one watermark over all prosumers: the first interval of
a new slot, from whichever prosumer came first, issued forecasts for every prosumer, so the others' forecasts
missed their own interval of that slot, the values depended on the interleaving of partitions (not
reproducible on replay) and such state cannot be split over workers. Here a prosumer's forecasts are issued when
its own interval enters a new issue period, so the output of a prosumer depends on its own intervals only and is
exactly what the hosted ForecastStream produced for an input of that prosumer alone (same ids and values). A
prosumer that stops reporting is not forecast any more (before, other prosumers' event time kept issuing its
forecasts from stale data). Portfolio forecasts are not published (the hosted stage had no portfolio map
either) and are not part of this stage.

Ids are deterministic (``entity/property/granularity/issued_at`` and ``.../as_of``), so a replay after a crash
repeats identical records.

With a weather view (``FORECAST_WEATHER_LOCATION``: :mod:`streams.analytics.weather_view`) every series the stage
starts (either model; the ensemble's linear member) reads the site's weather (:data:`streams.analytics.forecast_service.WEATHER_FIELDS`): the observed hours
when it learns, the forecast hours when it forecasts. The weather is an input like the wall clock, not state: a
replay after a newer weather forecast arrived issues the same ids with values from that forecast.

``model="ensemble"`` (setting ``FORECAST_MODEL``) runs :mod:`streams.analytics.ensemble_stream` instead, with
the same validation and key check: state under ``e:<prosumer_id>`` (open points) and
``e:<prosumer_id>/<property>/<horizon>`` (one ensemble series each, read and written only when one of its points
closes); forecasts at the horizons' block starts, P10/P90 on ``lower``/``upper``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edream.runtime.contract import Emit, KeyValueState, Record
from edream.serde import Serde
from streams.analytics import ensemble_stream
from streams.analytics.forecast_service import ForecastService
from streams.analytics.forecast_state import decode, dump_stream, encode, load_stream
from streams.analytics.forecast_stream import ForecastStream
from streams.analytics.weather_view import WeatherView
from streams.validation.fields import InvalidRecord
from streams.validation.interval import check_interval
from streams.validation.limits import Limits

STATE_PREFIX = "f:"
ENSEMBLE_PREFIX = "e:"  # another key, so switching FORECAST_MODEL starts fresh models instead of failing


def state_key(prosumer_id: str, model: str = "linear") -> str:
    return (ENSEMBLE_PREFIX if model == ensemble_stream.MODEL else STATE_PREFIX) + prosumer_id


@dataclass(frozen=True)
class ForecastTopics:
    """The loaded topology's names of the stage's topics."""

    intervals: str
    forecasts: str
    accuracy: str


class ForecastProcessor:
    """See the module docstring. ``clock``: wall clock in seconds (the bound of valid event times); ``model``:
    ``linear`` (River, :class:`ForecastStream`) or ``ensemble`` (:mod:`streams.analytics.ensemble_stream`,
    state under ``e:<prosumer_id>``)."""

    def __init__(
        self,
        serde: Serde,
        topics: ForecastTopics,
        limits: Limits,
        clock: Callable[[], float] = time.time,
        model: str = "linear",
        weather: WeatherView | None = None,
    ):
        """``weather``: the site's hours (``FORECAST_WEATHER_LOCATION``) the ``linear`` models read, or None."""
        self.serde, self.topics, self.limits, self.clock, self.model = serde, topics, limits, clock, model
        self.weather = weather

    def on_record(self, record: Record, state: KeyValueState) -> Iterable[Emit]:
        name, rec = self.serde.decode(record.value, record.topic)
        if name != "IntervalEnergy":
            raise ValueError(f"{record.topic} carries IntervalEnergy records, got {name}")
        errors = check_interval(rec, int(self.clock() * 1000), self.limits)
        if errors:
            raise InvalidRecord("IntervalEnergy", errors)
        prosumer = rec["prosumer_id"]
        if record.key != prosumer.encode():
            raise ValueError(
                f"message key {record.key!r} is not the record's prosumer_id {prosumer!r} "
                f"({record.topic} must be keyed by prosumer_id so a prosumer's state stays on one partition)"
            )
        key = state_key(prosumer, self.model)
        if self.weather is not None:
            self.weather.refresh()
        if self.model == ensemble_stream.MODEL:
            return self._ensemble(rec, prosumer, key, state)
        old = state.get(key)
        stream = self._stream(old, prosumer)
        out = stream.on_interval(rec)
        new = encode(dump_stream(stream, prosumer))
        if new != old:
            state.set(key, new)
        return [Emit(topic, k, v) for topic, k, v in out]

    def _ensemble(self, rec: dict, prosumer: str, key: str, state: KeyValueState) -> list[Emit]:
        """The ensemble: open points under ``key``, each series under ``key/<property>/<horizon>``, loaded only
        when one of its points closes (:mod:`streams.analytics.ensemble_stream`)."""
        es = ensemble_stream
        old = state.get(key)
        open_points = es.decode_open(old)
        closed = es.closed_points(open_points, rec)
        forecasts, accuracy = [], []
        by_series: dict[str, list[tuple[int, float]]] = {}
        for prop, h, start, wh in closed:
            by_series.setdefault(f"{prop}/{h.name}", []).append((start, wh))
        for prop, h in es.SERIES:
            points = by_series.get(f"{prop}/{h.name}")
            if not points:
                continue
            skey = f"{key}/{prop}/{h.name}"
            blob = state.get(skey)
            wx = self.weather
            series = (
                es.EnsembleSeries.new(prop, h, weather=wx) if blob is None else es.decode_series(blob, wx)
            )
            for start, wh in points:
                forecasts += [series.forecast_record(prosumer, t, f) for t, f in series.close(start, wh)]
            acc = series.accuracy_record(prosumer)
            if acc is not None:
                accuracy.append(acc)
            state.set(skey, es.encode_series(series))
        new = es.encode_open(open_points)
        if new != old:
            state.set(key, new)
        t, k = self.topics, prosumer.encode()
        return [Emit(t.forecasts, k, self.serde.encode("Forecast", r, t.forecasts)) for r in forecasts] + [
            Emit(t.accuracy, k, self.serde.encode("ForecastAccuracy", r, t.accuracy)) for r in accuracy
        ]

    def on_tick(self, now_ms: int, partition: int, state: KeyValueState) -> Iterable[Emit]:
        return ()  # forecasts follow each prosumer's event time, not the wall clock

    def _stream(self, blob: bytes | None, prosumer: str) -> ForecastStream:
        if blob is None:
            return ForecastStream(
                self.serde,
                ForecastService(model=self.model, weather=self.weather),
                forecast_topic=self.topics.forecasts,
                accuracy_topic=self.topics.accuracy,
            )
        t = self.topics
        return load_stream(decode(blob), prosumer, self.serde, t.forecasts, t.accuracy, self.weather)
