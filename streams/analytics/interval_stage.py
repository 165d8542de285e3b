"""Adapter of the interval stage for the runtime: ``meter.readings.raw.v1`` bytes in, ``IntervalEnergy`` bytes out.

:class:`IntervalStage` is the stage's :class:`~edream.runtime.contract.StageProcessor`: it decodes a reading,
validates it (:func:`streams.validation.measurement.validate_measurement`, against the wall clock) and only then
hands it to :class:`~streams.analytics.interval_processor.IntervalProcessor` with the partition's state; the
intervals it closes or corrects are encoded as ``IntervalEnergy`` (key ``prosumer_id``). A clock tick closes the
windows of silent meters once the wall clock is past their end plus the allowed lateness.

Bad input raises :class:`RejectedReading` before anything touches the state, and the runtime dead-letters the
original bytes with the stage and the reason; ``error_type`` is the machine code (``decode_error``,
``wrong_schema``, a validation code such as ``unit_mismatch``, or ``too_late`` for a reading older than the
correction horizon).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from edream.runtime.contract import Emit, KeyValueState, Record
from edream.serde import DecodeError, Serde
from streams.analytics.interval_processor import IntervalProcessor
from streams.analytics.interval_rules import IntervalConfig
from streams.validation.measurement import ValidationConfig, default_config, validate_measurement


class RejectedReading(ValueError):
    """A reading the stage refuses; ``error_type`` is the dead letter's machine code, the message the reason."""

    def __init__(self, error_type: str, reason: str):
        super().__init__(reason)
        self.error_type = error_type


class IntervalStage:
    """The interval stage as a :class:`~edream.runtime.contract.StageProcessor` (see the module docstring)."""

    def __init__(
        self,
        serde: Serde,
        interval_topic: str,
        cfg: IntervalConfig | None = None,
        validation: ValidationConfig | None = None,
        now_ms: Callable[[], int] | None = None,
    ):
        self.serde, self.interval_topic = serde, interval_topic
        self.validation = validation or default_config()
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.processor = IntervalProcessor(cfg, now_ms=self.now_ms)

    def reading(self, record: Record) -> dict[str, Any]:
        """The decoded, validated Measurement of a record; raises :class:`RejectedReading`."""
        try:
            name, rec = self.serde.decode(record.value, record.topic)
        except DecodeError as exc:
            raise RejectedReading("decode_error", str(exc)) from exc
        if name != "Measurement":
            raise RejectedReading("wrong_schema", f"expected Measurement, got {name}")
        verdict = validate_measurement(rec, now_ms=self.now_ms(), cfg=self.validation)
        if not verdict.ok:
            raise RejectedReading(verdict.code, verdict.reason)
        return rec

    def on_record(self, record: Record, state: KeyValueState) -> list[Emit]:
        outcome = self.processor.process(self.reading(record), state)
        if outcome.status == "too_late":
            raise RejectedReading("too_late", "older than the correction horizon")
        return self._emits(outcome.intervals)

    def on_tick(self, now_ms: int, partition: int, state: KeyValueState) -> list[Emit]:
        return self._emits(self.processor.advance_to(now_ms, state))

    def _emits(self, intervals: list[dict[str, Any]]) -> list[Emit]:
        if not intervals:
            return []
        bodies = self.serde.encode_many("IntervalEnergy", intervals, self.interval_topic)
        return [
            Emit(self.interval_topic, r["prosumer_id"].encode(), b)
            for r, b in zip(intervals, bodies, strict=True)
        ]
