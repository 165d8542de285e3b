"""Topology agent ``baselines``: intervals + flex allocations (event days) -> baseline.15m.v1.

:func:`stage` is the stage on the one runtime (:mod:`edream.runtime`): per-prosumer state, intervals re-keyed to
their prosumers, allocations already keyed by prosumer (see :mod:`streams.analytics.baseline_processor`).
"""

from __future__ import annotations

from typing import Any

from edream.runtime.contract import StageSpec
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import AgentTopics
from streams.analytics.baseline_processor import BaselineProcessor, interval_prosumer_key
from streams.validation.limits import Limits

STAGE = "baselines"


def stage(settings: Settings, topology: Any) -> StageSpec:
    """The ``baselines`` stage: ``meter.intervals.15m.v1`` (re-keyed by prosumer_id) and ``flex.allocations.v1``
    (key prosumer_id) in, ``baseline.15m.v1`` (key prosumer_id) out: the topics the topology declares for agent
    ``baselines``."""
    topics = AgentTopics(topology, STAGE)
    intervals, allocations = topics.input("IntervalEnergy"), topics.input("FlexAllocation")
    out = topics.output("Baseline")
    serde, limits = Serde(settings), Limits.from_settings(settings)

    def make(views: dict[str, Any]) -> BaselineProcessor:
        return BaselineProcessor(
            serde, intervals_topic=intervals, allocations_topic=allocations, baseline_topic=out, limits=limits
        )

    return StageSpec(
        name=STAGE,
        inputs=(intervals, allocations),
        outputs=(out,),
        make=make,
        rekey={intervals: interval_prosumer_key},
        description="Day-ahead and same-day adjusted customer baselines per prosumer, event days excluded",
    )
