"""Topology agent ``intervals``: meter.readings.raw.v1 -> meter.intervals.15m.v1 (+ dead letters).

:func:`stage` is the stage for the platform's runtime (:mod:`edream.runtime`): per-meter state in the partition
store, wall-clock ticks every second close silent meters' windows. Readings are keyed by ``device_id``, so every
meter's state is local to its partition and no repartition is needed. :func:`register` still hosts the previous
:class:`~streams.analytics.agent.IntervalAgent` (whole-state snapshot) for processes that do not run stages yet;
the runtime prefers :func:`stage` when both exist.
"""

from __future__ import annotations

from typing import Any

from edream.runtime.contract import StageSpec
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import Topology
from streams.agents.runtime import group_id, host, state_dir, topics, worker_settings
from streams.analytics.interval_rules import IntervalConfig
from streams.analytics.worker import DEADLETTER_TOPIC, INTERVAL_TOPIC, RAW_TOPIC
from streams.app import AgentContext
from streams.hosting import topic_names
from streams.validation.limits import Limits
from streams.validation.measurement import ValidationConfig

NAME = "intervals"
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


def register(app: Any, ctx: AgentContext) -> None:
    from streams.analytics.agent import IntervalAgent

    names = topics(ctx)

    def build() -> IntervalAgent:
        settings = worker_settings(app, ctx)
        return IntervalAgent(
            settings,
            state_dir(settings),
            group_id=group_id(settings, NAME),
            raw_topic=names[RAW_TOPIC],
            interval_topic=names[INTERVAL_TOPIC],
            deadletter_topic=names[DEADLETTER_TOPIC],
        )

    host(app, NAME, build)
