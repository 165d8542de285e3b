"""The Open-Meteo forecast API as the feed uses it: the request of one site and its answer as WeatherHour records.

Request: ``GET <base_url>/forecast?latitude=..&longitude=..&hourly=temperature_2m,shortwave_radiation&past_days=P
&forecast_days=F&timeformat=unixtime&timezone=GMT``. Answer (the parts read)::

    {"utc_offset_seconds": 0,
     "hourly": {"time": [1796601600, ...],              # UTC epoch seconds, hourly
                "temperature_2m": [4.1, ...],           # degC at that instant
                "shortwave_radiation": [0.0, ...]}}     # W/m2, mean of the hour *before* that instant

So the hour ``[H, H + 1 h)`` gets the radiation stamped ``H + 1 h`` and the mean of the temperatures at ``H`` and
``H + 1 h`` (the one known where the other is not). Nothing is trusted: the time axis must be whole, increasing
hours of the same length as every value list, and a value that is not a finite number inside its bounds is left
out and reported (the hour keeps its other values). Hours outside [issued_at - 93 d, issued_at + 17 d] are dropped
(an answer for another date is a broken service, not weather). An hour that had ended when the service was asked
is ``OBSERVED``, the rest ``FORECAST``. Clear-sky GHI comes from :mod:`.clearsky`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from connectors.weather.clearsky import hourly_clear_sky_ghi
from connectors.weather.config import Site, WeatherFeedConfig
from streams.analytics.weather import BOUNDS

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
HOURLY = ("temperature_2m", "shortwave_radiation")
PAST_LIMIT_MS = 93 * DAY_MS
FUTURE_LIMIT_MS = 17 * DAY_MS


class AnswerError(ValueError):
    """The service's answer cannot be read at all (no usable time axis); nothing of it is used."""


@dataclass
class Parsed:
    """WeatherHour records of one answer and why any value of it was left out."""

    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def request_params(site: Site, cfg: WeatherFeedConfig) -> dict[str, str | float | int]:
    return {
        "latitude": site.latitude,
        "longitude": site.longitude,
        "hourly": ",".join(HOURLY),
        "past_days": cfg.past_days,
        "forecast_days": cfg.forecast_days,
        "timeformat": "unixtime",
        "timezone": "GMT",
    }


def _times(doc: Any) -> tuple[dict[str, Any], list[int]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("hourly"), dict):
        raise AnswerError("the answer has no 'hourly' object")
    if doc.get("utc_offset_seconds", 0) != 0:
        raise AnswerError(f"utc_offset_seconds is {doc.get('utc_offset_seconds')!r}, asked for GMT")
    hourly = doc["hourly"]
    times = hourly.get("time")
    if not isinstance(times, list) or not times:
        raise AnswerError("hourly.time is missing or empty")
    if not all(isinstance(t, int) and not isinstance(t, bool) and t % 3600 == 0 for t in times):
        raise AnswerError("hourly.time must be whole hours in UTC epoch seconds (timeformat=unixtime)")
    if any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise AnswerError("hourly.time is not strictly increasing")
    for name in HOURLY:
        values = hourly.get(name)
        if values is not None and (not isinstance(values, list) or len(values) != len(times)):
            raise AnswerError(f"hourly.{name} must be a list of {len(times)} values")
    return hourly, [t * 1000 for t in times]


def _values(
    hourly: dict[str, Any], name: str, bounds: tuple[float, float], problems: list[str]
) -> list[float]:
    """The list ``hourly[name]`` as floats, NaN where missing or invalid (each invalid one reported)."""
    lo, hi = bounds
    out = []
    for i, v in enumerate(hourly.get(name) or []):
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
        if v is not None and not ok:
            problems.append(f"hourly.{name}[{i}] = {v!r} is not a number in [{lo}, {hi}]")
        out.append(float(v) if ok else math.nan)
    return out


def weather_hours(doc: Any, site: Site, issued_at_ms: int, source: str) -> Parsed:
    """WeatherHour records (avro/WeatherHour.avsc) of one answer about ``site``, asked at ``issued_at_ms``."""
    hourly, stamps = _times(doc)
    out = Parsed()
    temp = dict(zip(stamps, _values(hourly, "temperature_2m", BOUNDS["temp_c"], out.problems), strict=False))
    ghi = _values(hourly, "shortwave_radiation", BOUNDS["ghi_w_m2"], out.problems)
    ghi_by_start = {t - HOUR_MS: g for t, g in zip(stamps, ghi, strict=False)}  # the hour before the stamp
    starts = sorted(set(stamps) | set(ghi_by_start))
    starts = [h for h in starts if issued_at_ms - PAST_LIMIT_MS <= h <= issued_at_ms + FUTURE_LIMIT_MS]
    dropped = len(set(stamps)) - len([t for t in stamps if t in set(starts)])
    if dropped > 0:
        out.problems.append(f"{dropped} hours outside [issued_at - 93 d, issued_at + 17 d] dropped")
    clear = dict(zip(starts, hourly_clear_sky_ghi(site.latitude, site.longitude, starts), strict=True))
    for h in starts:
        ends = [v for v in (temp.get(h, math.nan), temp.get(h + HOUR_MS, math.nan)) if not math.isnan(v)]
        t = sum(ends) / len(ends) if ends else None
        g = ghi_by_start.get(h, math.nan)
        g = None if math.isnan(g) else g
        if t is None and g is None:
            continue
        out.records.append(
            {
                "event_id": f"{site.location_id}/{h}/{issued_at_ms}",
                "location_id": site.location_id,
                "hour_start": h,
                "kind": "OBSERVED" if h + HOUR_MS <= issued_at_ms else "FORECAST",
                "temp_c": None if t is None else round(t, 2),
                "ghi_w_m2": g,
                "ghi_clear_w_m2": clear[h],
                "issued_at": issued_at_ms,
                "source": source,
            }
        )
    return out
