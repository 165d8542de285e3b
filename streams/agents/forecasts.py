"""Topology agent ``forecasts``: intervals -> forecast.profiles.v1 + forecast.accuracy.v1 (see forecast_stream)."""

from __future__ import annotations

from typing import Any

from edream.serde import Serde
from streams.agents.runtime import host_stateful, topics
from streams.analytics.forecast_stream import ACCURACY_TOPIC, FORECAST_TOPIC, INTERVAL_TOPIC, ForecastStream
from streams.app import AgentContext


def register(app: Any, ctx: AgentContext) -> None:
    names = topics(ctx)
    out = {"forecast_topic": names[FORECAST_TOPIC], "accuracy_topic": names[ACCURACY_TOPIC]}

    def make(serde: Serde, blob: bytes | None) -> ForecastStream:
        return ForecastStream.restore(serde, blob, **out) if blob else ForecastStream(serde, **out)

    host_stateful(app, ctx, "forecasts", [INTERVAL_TOPIC], make)
