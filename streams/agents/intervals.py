"""Topology agent ``intervals``: meter.readings.raw.v1 -> meter.intervals.15m.v1 (+ dead letters).

:func:`stage` is the stage for the platform's runtime (:mod:`edream.runtime`): per-meter state in the partition
store, wall-clock ticks every second close silent meters' windows. Readings are keyed by ``device_id``, so every
meter's state is local to its partition and no repartition is needed.
"""

from __future__ import annotations

from edream.runtime.contract import StageSpec
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import Topology, topic_names
from streams.analytics.interval_rules import IntervalConfig
from streams.validation.limits import Limits
from streams.validation.measurement import ValidationConfig

NAME = "intervals"
RAW_TOPIC = "meter.readings.raw.v1"
INTERVAL_TOPIC = "meter.intervals.15m.v1"
#: period of the wall-clock ticks that close silent meters' windows, ms
TICK_MS = 1000


def stage(settings: Settings, topology: Topology, cfg: IntervalConfig | None = None) -> StageSpec:
    """The interval stage on the loaded topology's topic names, validating readings with ``settings``' limits."""
    from streams.analytics.interval_stage import IntervalStage

    names = topic_names(topology)
    raw, out = names[RAW_TOPIC], names[INTERVAL_TOPIC]
    validation = ValidationConfig.from_limits(Limits.from_settings(settings))

    def make(views: dict) -> IntervalStage:
        return IntervalStage(Serde(settings), out, cfg, validation)

    return StageSpec(
        NAME,
        (raw,),
        (out,),
        make,
        tick_ms=TICK_MS,
        description="15-minute import/export energy per meter (event time, late-data corrections)",
    )
