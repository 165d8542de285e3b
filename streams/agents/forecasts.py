"""Topology agent ``forecasts``: intervals -> forecast.profiles.v1 + forecast.accuracy.v1 (with
``FORECAST_WEATHER_LOCATION``: the site's weather.hourly.v1 hours, read whole as a view, as model inputs).

:func:`stage` is the stage on the runtime (per-prosumer state, see :mod:`streams.analytics.forecast_processor`).
"""

from __future__ import annotations

from typing import Any

from edream.runtime.contract import StageSpec
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import AgentTopics
from streams.analytics.forecast_processor import ForecastProcessor, ForecastTopics
from streams.analytics.weather_view import WeatherView
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
    location = settings.forecast_weather_location
    weather_topic = topics.input("WeatherHour")

    def make(views: dict) -> ForecastProcessor:
        serde = Serde(settings)
        weather = WeatherView(views[weather_topic], location, serde, weather_topic) if location else None
        return ForecastProcessor(serde, t, limits, model=settings.forecast_model, weather=weather)

    return StageSpec(
        name=NAME,
        inputs=(t.intervals,),
        outputs=(t.forecasts, t.accuracy),
        make=make,
        views=(weather_topic,) if location else (),
        description=f"Online per-prosumer forecasts ({settings.forecast_model}) issued on each prosumer's event time, "
        "scored against actuals" + (f"; weather of {location} from {weather_topic}" if location else ""),
    )
