"""Topology agent ``baselines``: intervals + flex orders (event days) -> baseline.15m.v1 (see baseline_stream)."""

from __future__ import annotations

from typing import Any

from edream.serde import Serde
from streams.agents.runtime import host_stateful, topics
from streams.analytics.baseline_stream import BASELINE_TOPIC, INTERVAL_TOPIC, ORDERS_TOPIC, BaselineStream
from streams.app import AgentContext


def register(app: Any, ctx: AgentContext) -> None:
    out = {"baseline_topic": topics(ctx)[BASELINE_TOPIC]}

    def make(serde: Serde, blob: bytes | None) -> BaselineStream:
        return BaselineStream.restore(serde, blob, **out) if blob else BaselineStream(serde, **out)

    host_stateful(app, ctx, "baselines", [INTERVAL_TOPIC, ORDERS_TOPIC], make)
