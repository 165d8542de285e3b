"""Topology agent ``forecasts``: intervals -> forecast.profiles.v1 + forecast.accuracy.v1.

:func:`stage` is the stage on the runtime (per-prosumer state, see :mod:`streams.analytics.forecast_processor`).
"""

from __future__ import annotations

from typing import Any

from edream.runtime.contract import StageSpec
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import AgentTopics
from streams.analytics.forecast_processor import ForecastProcessor, ForecastTopics
from streams.validation.limits import Limits

NAME = "forecasts"


def stage(settings: Settings, topology: Any) -> StageSpec:
    """The forecasts stage: intervals keyed by prosumer, state ``f:<prosumer_id>``, no ticks (event time); its
    topics are those the topology declares for agent ``forecasts``."""
    topics = AgentTopics(topology, NAME)
    t = ForecastTopics(
        topics.input("IntervalEnergy"), topics.output("Forecast"), topics.output("ForecastAccuracy")
    )
    limits = Limits.from_settings(settings)
    return StageSpec(
        name=NAME,
        inputs=(t.intervals,),
        outputs=(t.forecasts, t.accuracy),
        make=lambda views: ForecastProcessor(Serde(settings), t, limits, model=settings.forecast_model),
        description=f"Online per-prosumer forecasts ({settings.forecast_model}) issued on each prosumer's event time, "
        "scored against actuals",
    )
