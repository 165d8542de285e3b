"""``weather.yaml``: which weather service the feed asks, how often, and for which sites.

.. code-block:: yaml

    weather:
      base_url: https://api.open-meteo.com/v1   # an Open-Meteo-compatible forecast API
      poll_minutes: 60
      past_days: 2        # hours already passed come back as OBSERVED
      forecast_days: 2
      sites:
        - {location_id: demo-community, latitude: 39.742, longitude: -105.18}

An invalid file fails at start with a message naming the file, the entry and the field, e.g.
``weather.yaml: sites[1] 'roof': field 'latitude': Input should be less than or equal to 90``.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streams.validation.fields import ID_PATTERN


class WeatherConfigError(ValueError):
    """An invalid weather feed config; the message names file, entry and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Site(_Strict):
    location_id: str = Field(
        pattern=f"^{ID_PATTERN.pattern}$",
        max_length=128,
        description="the site id the forecasts stage refers to",
    )
    latitude: float = Field(ge=-90, le=90, description="WGS84 degrees")
    longitude: float = Field(ge=-180, le=180, description="WGS84 degrees")


class WeatherFeedConfig(_Strict):
    base_url: str = Field(description="Open-Meteo-compatible API root; the feed GETs <base_url>/forecast")
    poll_minutes: float = Field(60.0, gt=0, le=24 * 60)
    past_days: int = Field(2, ge=0, le=92)
    forecast_days: int = Field(2, ge=1, le=16)
    timeout_s: float = Field(20.0, gt=0)
    sites: list[Site] = Field(min_length=1)

    @field_validator("base_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("sites")
    @classmethod
    def _unique(cls, v: list[Site]) -> list[Site]:
        ids = [s.location_id for s in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"location_id {dup} listed more than once")
        return v


def _entry(data: dict, loc: tuple) -> str:
    """``sites[1] 'roof': field 'latitude'`` (or ``field 'poll_minutes'``) from a pydantic error location."""
    if len(loc) >= 2 and loc[0] == "sites" and isinstance(loc[1], int):
        sites = data.get("sites") or []
        name = (
            sites[loc[1]].get("location_id")
            if loc[1] < len(sites) and isinstance(sites[loc[1]], dict)
            else None
        )
        head = f"sites[{loc[1]}]" + (f" {name!r}" if name else "")
        return f"{head}: field {'.'.join(map(str, loc[2:]))!r}" if len(loc) > 2 else head
    return f"field {'.'.join(map(str, loc))!r}"


def load_weather_config(path: Path | str) -> WeatherFeedConfig:
    """Read and validate ``path`` (top-level key ``weather``)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise WeatherConfigError(f"{path}: cannot be read as YAML: {exc}") from None
    if not isinstance(raw, dict) or set(raw) != {"weather"} or not isinstance(raw["weather"], dict):
        raise WeatherConfigError(f"{path}: top level must be a mapping with the one key 'weather'")
    data = raw["weather"]
    try:
        return WeatherFeedConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        raise WeatherConfigError(f"{path}: {_entry(data, tuple(err['loc']))}: {msg}{more}") from None
