"""Topology agent ``intervals``: meter.readings.raw.v1 -> meter.intervals.15m.v1 (+ dead letters).

:func:`stage` is the stage for the platform's runtime (:mod:`edream.runtime`): per-meter state in the partition
store, wall-clock ticks every second close silent meters' windows (held while readings wait on the input). Readings are keyed by ``device_id``, so every
meter's state is local to its partition and no repartition is needed.
"""

from __future__ import annotations

from edream.runtime.contract import StageSpec
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import AgentTopics, Topology
from streams.analytics.interval_rules import IntervalConfig
from streams.validation.limits import Limits
from streams.validation.measurement import ValidationConfig

NAME = "intervals"
#: period of the wall-clock ticks that close silent meters' windows, ms
TICK_MS = 1000
#: a tick closes or settles a window only once the stage has processed the readings that were on its input, at most
#: this late (ms): after a rebalance the new owner of a partition meets the ticks sent while it had no owner next to
#: readings still on the broker, and a meter whose buffered readings are half processed is not "quiet"
TICK_HOLD_MS = 60_000


def stage(settings: Settings, topology: Topology, cfg: IntervalConfig | None = None) -> StageSpec:
    """The interval stage on the topics the topology declares for agent ``intervals`` (its Measurement input and
    IntervalEnergy output), validating readings with ``settings``' limits."""
    from streams.analytics.interval_stage import IntervalStage

    topics = AgentTopics(topology, NAME)
    raw, out = topics.input("Measurement"), topics.output("IntervalEnergy")
    validation = ValidationConfig.from_limits(Limits.from_settings(settings))

    def make(views: dict) -> IntervalStage:
        return IntervalStage(Serde(settings), out, cfg, validation)

    return StageSpec(
        NAME,
        (raw,),
        (out,),
        make,
        tick_ms=TICK_MS,
        ticks_wait_for_inputs_ms=TICK_HOLD_MS,
        description="15-minute import/export energy per meter (event time, late-data corrections)",
    )
