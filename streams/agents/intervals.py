"""Topology agent ``intervals``: meter.readings.raw.v1 -> meter.intervals.15m.v1 (+ dead letters).

Hosts :class:`~streams.analytics.agent.IntervalAgent` (its own snapshot and commits) on a worker thread.
"""

from __future__ import annotations

from typing import Any

from streams.agents.runtime import group_id, host, state_dir, topics, worker_settings
from streams.analytics.worker import DEADLETTER_TOPIC, INTERVAL_TOPIC, RAW_TOPIC
from streams.app import AgentContext


def register(app: Any, ctx: AgentContext) -> None:
    from streams.analytics.agent import IntervalAgent

    names = topics(ctx)

    def build() -> IntervalAgent:
        settings = worker_settings(app, ctx)
        return IntervalAgent(
            settings,
            state_dir(settings),
            group_id=group_id(settings, "intervals"),
            raw_topic=names[RAW_TOPIC],
            interval_topic=names[INTERVAL_TOPIC],
            deadletter_topic=names[DEADLETTER_TOPIC],
        )

    host(app, "intervals", build)
