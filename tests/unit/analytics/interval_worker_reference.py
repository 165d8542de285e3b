"""Test reference: the interval stage's former message handler (bytes in, (topic, key, bytes) out) on the
in-memory :class:`~streams.analytics.intervals.IntervalAggregator`; the stage's tests check that the runtime stage
emits the same records for the same readings.

``IntervalWorker.handle`` decodes a ``meter.readings.raw.v1`` message, validates it, drops exact duplicates,
feeds the :class:`~streams.analytics.intervals.IntervalAggregator` and returns the messages to produce: closed
or corrected ``IntervalEnergy`` records (key prosumer_id) and ``DeadLetter`` records for undecodable or invalid
input (key source topic, original bytes kept). ``tick(now_ms)`` is the timer path that closes windows of silent
meters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from edream.serde import DecodeError, Serde
from streams.analytics.intervals import IntervalAggregator, IntervalConfig
from streams.analytics.validation import DuplicateFilter, validate_measurement
from streams.deadletter import dead_letter

RAW_TOPIC = "meter.readings.raw.v1"
INTERVAL_TOPIC = "meter.intervals.15m.v1"
DEADLETTER_TOPIC = "platform.deadletter.v1"

Out = tuple[str, bytes, bytes]  # (topic, key, value)


class IntervalWorker:
    def __init__(
        self,
        serde: Serde,
        cfg: IntervalConfig | None = None,
        now_ms: Callable[[], int] | None = None,
        aggregator: IntervalAggregator | None = None,
        interval_topic: str = INTERVAL_TOPIC,
        deadletter_topic: str = DEADLETTER_TOPIC,
    ):
        self.serde = serde
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.agg = aggregator or IntervalAggregator(cfg, now_ms=self.now_ms)
        self.dedup = DuplicateFilter()
        self.interval_topic = interval_topic
        self.deadletter_topic = deadletter_topic
        self.counters: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _dead(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes, code: str, why: str
    ):
        self._count(f"deadletter.{code}")
        rec = dead_letter(
            topic,
            partition,
            offset,
            key,
            value,
            "analytics.intervals",
            why,
            error_type=code,
            failed_at=self.now_ms(),
        )
        return [
            (
                self.deadletter_topic,
                topic.encode(),
                self.serde.encode("DeadLetter", rec, self.deadletter_topic),
            )
        ]

    def _intervals(self, recs: list[dict[str, Any]]) -> list[Out]:
        self.counters["intervals"] = self.counters.get("intervals", 0) + len(recs)
        return [
            (
                self.interval_topic,
                r["prosumer_id"].encode(),
                self.serde.encode("IntervalEnergy", r, self.interval_topic),
            )
            for r in recs
        ]

    def handle(
        self,
        value: bytes,
        key: bytes | None = None,
        topic: str = RAW_TOPIC,
        partition: int = 0,
        offset: int = -1,
    ) -> list[Out]:
        try:
            name, rec = self.serde.decode(value, topic)
        except DecodeError as exc:
            return self._dead(topic, partition, offset, key, value, "decode_error", str(exc))
        if name != "Measurement":
            return self._dead(
                topic, partition, offset, key, value, "wrong_schema", f"expected Measurement, got {name}"
            )
        verdict = validate_measurement(rec, now_ms=self.now_ms())
        if not verdict.ok:
            return self._dead(topic, partition, offset, key, value, verdict.code, verdict.reason)
        if self.dedup.seen(rec):
            self._count("duplicate")
            return []
        outcome = self.agg.process(rec)
        self._count(outcome.status)
        if outcome.status == "too_late":
            return self._dead(
                topic, partition, offset, key, value, "too_late", "older than the correction horizon"
            )
        return self._intervals(outcome.intervals) if outcome.intervals else []

    def tick(self, now_ms: int | None = None) -> list[Out]:
        """Timer: close windows that wall-clock time (minus the allowed lateness) has passed."""
        return self._intervals(self.agg.advance_to(self.now_ms() if now_ms is None else now_ms))
