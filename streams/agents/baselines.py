"""Topology agent ``baselines``: intervals + flex orders (event days) -> baseline.15m.v1.

:func:`stage` is the stage on the one runtime (:mod:`edream.runtime`): per-prosumer state, orders re-keyed to
their prosumers (see :mod:`streams.analytics.baseline_processor`).
"""

from __future__ import annotations

from typing import Any

from edream.runtime.contract import StageSpec
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import AgentTopics
from streams.analytics.baseline_processor import (
    BaselineProcessor,
    interval_prosumer_key,
    order_prosumer_keys,
)
from streams.validation.limits import Limits

STAGE = "baselines"


def stage(settings: Settings, topology: Any) -> StageSpec:
    """The ``baselines`` stage: ``meter.intervals.15m.v1`` (re-keyed by prosumer_id) and ``flex.orders.v1``
    (key order_id, re-keyed to each allocated prosumer) in, ``baseline.15m.v1`` (key prosumer_id) out: the topics
    the topology declares for agent ``baselines``."""
    topics = AgentTopics(topology, STAGE)
    intervals, orders = topics.input("IntervalEnergy"), topics.input("FlexOrder")
    out = topics.output("Baseline")
    serde, limits = Serde(settings), Limits.from_settings(settings)

    def make(views: dict[str, Any]) -> BaselineProcessor:
        return BaselineProcessor(
            serde, intervals_topic=intervals, orders_topic=orders, baseline_topic=out, limits=limits
        )

    return StageSpec(
        name=STAGE,
        inputs=(intervals, orders),
        outputs=(out,),
        make=make,
        rekey={
            intervals: interval_prosumer_key(serde, intervals),
            orders: order_prosumer_keys(serde, orders),
        },
        description="Day-ahead and same-day adjusted customer baselines per prosumer, event days excluded",
    )
