"""Forecasting of one prosumer's intervals: ``meter.intervals.15m.v1`` bytes in, forecasts and accuracy out.

Wraps the pure :class:`~streams.analytics.forecast_service.ForecastService`; the forecasts stage
(:mod:`streams.analytics.forecast_processor`) keeps one per prosumer in its partition state. Event time drives everything: the *watermark* is the latest
``interval_end`` seen (UTC epoch ms). Portfolio slots complete up to the watermark are learnt; whenever the
watermark enters a new issue period of a horizon (hour-ahead every 15 min, intra-day every 30 min, day-ahead
every UTC day; the first interval issues all three) the service issues Forecast records at the watermark, and
the ForecastAccuracy records whose ``as_of`` moved since they were last emitted follow. Ids are deterministic
(``entity/property/granularity/issued_at``), so a replay re-emits identical records.
"""

from __future__ import annotations

from typing import Any

from edream.serde import DecodeError, Serde
from streams.analytics.forecast_service import ForecastService
from streams.analytics.forecasting import DAY_MS
from streams.outputs import Emit

INTERVAL_TOPIC = "meter.intervals.15m.v1"
FORECAST_TOPIC = "forecast.profiles.v1"
ACCURACY_TOPIC = "forecast.accuracy.v1"
#: horizon -> issue period (ms, event time)
ISSUE_EVERY_MS = {"hour-ahead": 900_000, "intra-day": 1_800_000, "day-ahead": DAY_MS}


class ForecastStream:
    def __init__(
        self,
        serde: Serde,
        service: ForecastService | None = None,
        forecast_topic: str = FORECAST_TOPIC,
        accuracy_topic: str = ACCURACY_TOPIC,
    ):
        self.serde = serde
        self.service = service or ForecastService()
        self.forecast_topic, self.accuracy_topic = forecast_topic, accuracy_topic
        self.watermark: int | None = None
        self.emitted_as_of: dict[str, int] = {}  # accuracy key (event id without as_of) -> last as_of emitted
        self.skipped = 0

    def handle(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int) -> list[Emit]:
        try:
            name, rec = self.serde.decode(value, topic)
        except DecodeError:
            self.skipped += 1  # the sink agent dead-letters undecodable interval messages
            return []
        if name != "IntervalEnergy":
            self.skipped += 1
            return []
        return self.on_interval(rec)

    def on_interval(self, rec: dict[str, Any]) -> list[Emit]:
        """Learn from one decoded IntervalEnergy record and issue what its ``interval_end`` makes due."""
        self.service.observe_interval(rec)
        return self.advance(int(rec["interval_end"]))

    def tick(self, now_ms: int) -> list[Emit]:
        return []  # forecasts follow the data's event time, not the wall clock

    def advance(self, watermark: int) -> list[Emit]:
        """Move the event-time watermark; issue the horizons whose issue period it entered."""
        old = self.watermark
        if old is not None and watermark <= old:
            return []
        self.watermark = watermark
        self.service.close_until(watermark)
        out: list[Emit] = []
        for horizon, every in ISSUE_EVERY_MS.items():
            if old is None or watermark // every > old // every:
                out += [
                    self._emit(self.forecast_topic, "Forecast", r)
                    for r in self.service.issue(watermark, horizon)
                ]
        return out + self._accuracy()

    def _accuracy(self) -> list[Emit]:
        out = []
        for r in self.service.accuracy_records():
            k = r["event_id"].rsplit("/", 1)[0]
            if self.emitted_as_of.get(k) != r["as_of"]:
                self.emitted_as_of[k] = r["as_of"]
                out.append(self._emit(self.accuracy_topic, "ForecastAccuracy", r))
        return out

    def _emit(self, topic: str, schema: str, rec: dict[str, Any]) -> Emit:
        return topic, rec["entity_id"].encode(), self.serde.encode(schema, rec, topic)
