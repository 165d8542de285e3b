"""Topology agent ``flex``: enrolments, the DSO registry, signed DSO requests, readings, baselines and forecasts -> offers, orders,
deviations, settlements, rejections and device set-points.

Hosts :class:`~streams.flex.service.FlexStream` on a :class:`~streams.stateful_loop.StatefulLoop`: state is
snapshotted under ``<EDREAM_DATA_DIR>/state/`` and restored on restart, the compacted registry is re-read from the
beginning on every start, and the slot outlook is the :class:`~streams.flex.outlook.OutlookBook` fed from
``baseline.15m.v1``, ``forecast.profiles.v1`` and the readings.
"""

from __future__ import annotations

from typing import Any

from edream.serde import Serde
from streams.agents.runtime import host_stateful, topics
from streams.app import AgentContext


def register(app: Any, ctx: AgentContext) -> None:
    from streams.flex.desk import FlexDesk
    from streams.flex.dsos import TOPIC_DSOS
    from streams.flex.enrolment import Registry
    from streams.flex.outlook import OutlookBook
    from streams.flex.service import CAUGHT_UP_SLACK, INPUT_TOPICS, TOPIC_ENROLMENTS, FlexStream

    names = topics(ctx)

    def make(serde: Serde, blob: bytes | None) -> FlexStream:
        if blob:
            desk = FlexStream.restore_desk(blob)
        else:
            registry = Registry()
            desk = FlexDesk(registry, OutlookBook(registry))
        return FlexStream(serde, desk, names)

    host_stateful(
        app,
        ctx,
        "flex",
        INPUT_TOPICS,
        make,
        replay_from_start=(TOPIC_ENROLMENTS, TOPIC_DSOS),
        caught_up_slack=CAUGHT_UP_SLACK,
    )
